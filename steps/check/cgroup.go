package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
)

// MemoryCgroup checks limiting memory with a cgroup. The article makes the
// cgroup by hand (/sys/fs/cgroup/memory/busybox, memory.limit_in_bytes
// 7340032) and leaves it until its clean-up step, so that cgroup is what is
// checked when it is there or when the attendee works by hand: its limit,
// swap, the OOM kills the kernel counted in it, the processes still in it.
// underhood's own step makes, uses and removes its cgroup within one run and
// leaves nothing to look at, so for it a probe cgroup is made and removed
// instead, the same way.
func MemoryCgroup(e Env) []Item {
	h, err := cgroup.DetectWith(e.CgroupRoot, e.FSType)
	if err != nil || h.MemoryVersion == 0 {
		detail := fmt.Sprintf("no memory controller under %s (layout %s)", e.CgroupRoot, h.Layout)
		if err != nil {
			detail = err.Error()
		}
		return []Item{{"memory controller", ui.Fail, detail, "sudo underhood doctor says what to change"}}
	}
	items := []Item{controllerItem(h)}
	dir := filepath.Join(h.MemoryRoot, e.Cgroup)
	_, err = os.Stat(dir)
	if err == nil || e.ByHand {
		items = append(items, handMade(e, h, dir)...)
	}
	if !e.ByHand {
		items = append(items, probeCgroup(e, h))
	}
	return items
}

func controllerItem(h cgroup.Host) Item {
	if h.MemoryVersion == 1 {
		return Item{"memory controller", ui.OK, fmt.Sprintf("cgroup v1 at %s: the article's files (memory.limit_in_bytes, tasks)", h.MemoryRoot), ""}
	}
	return Item{"memory controller", ui.OK, fmt.Sprintf("cgroup v2 at %s: memory.max and cgroup.procs stand for the article's memory.limit_in_bytes and tasks", h.MemoryRoot), ""}
}

// handMade checks the article's cgroup at dir.
func handMade(e Env, h cgroup.Host, dir string) []Item {
	name := "cgroup " + e.Cgroup
	v2 := h.MemoryVersion == 2
	limit := strconv.FormatInt(e.Limit, 10)
	procs := "tasks"
	if v2 {
		procs = "cgroup.procs"
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		mk := "sudo mkdir " + dir
		if v2 {
			mk = "echo +memory | sudo tee " + filepath.Join(h.MemoryRoot, "cgroup.subtree_control") + " && " + mk
		}
		return []Item{{name, ui.Fail, "no cgroup " + dir, mk + " && echo " + limit + " | sudo tee " + filepath.Join(dir, limitFile(h.MemoryVersion))},
			skipped("limit"), skipped("swap"), skipped("OOM kills"), skipped("processes")}
	}
	items := []Item{{name, ui.OK, dir, ""}}

	lf := filepath.Join(dir, limitFile(h.MemoryVersion))
	set := "echo " + limit + " | sudo tee " + lf
	got, err := readValue(lf)
	switch {
	case errors.Is(err, fs.ErrNotExist) && v2:
		sub := filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")
		items = append(items, Item{"limit", ui.Fail, "no memory.max in " + dir + ": the memory controller is not on for the cgroups below " + filepath.Dir(dir),
			fmt.Sprintf("sudo rmdir %s && echo +memory | sudo tee %s && sudo mkdir %s && %s", dir, sub, dir, set)})
	case err != nil:
		items = append(items, Item{"limit", ui.Fail, err.Error(), set})
	case got != limit:
		items = append(items, Item{"limit", ui.Fail, fmt.Sprintf("%s is %s, not %s: %s", filepath.Base(lf), got, limit, describeLimit(got)), set})
	default:
		items = append(items, Item{"limit", ui.OK, fmt.Sprintf("%s = %s (%s)", filepath.Base(lf), got, cgroup.FormatSize(e.Limit)), ""})
	}

	items = append(items, swapItem(e, h, dir))

	ev, key := filepath.Join(dir, "memory.oom_control"), "oom_kill"
	if v2 {
		ev = filepath.Join(dir, "memory.events")
	}
	hog := fmt.Sprintf("sudo sh -c 'echo $$ >> %s && toomuch=$(head -c 7500000 /dev/urandom)'", filepath.Join(dir, procs))
	if n, ok, err := keyed(ev, key); errors.Is(err, fs.ErrNotExist) {
		items = append(items, Item{"OOM kills", ui.Warn, fmt.Sprintf("cannot tell: no %s in %s", filepath.Base(ev), dir), ""})
	} else if err != nil || !ok {
		items = append(items, Item{"OOM kills", ui.Warn, fmt.Sprintf("cannot tell: no %s line in %s (a kernel before 4.13)", key, ev), "watch the shell say Killed instead: " + hog})
	} else if n == 0 {
		// The kill is the point of the step: a limit that never bit proves nothing yet.
		items = append(items, Item{"OOM kills", ui.Fail, fmt.Sprintf("%s %s = 0: the kernel has killed nothing here yet", filepath.Base(ev), key),
			"run the article's memory hog in it: " + hog})
	} else {
		items = append(items, Item{"OOM kills", ui.OK, fmt.Sprintf("%s %s = %d: the kernel killed what went over the limit", filepath.Base(ev), key, n), ""})
	}

	pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
	switch {
	case err != nil:
		items = append(items, Item{"processes", ui.Warn, err.Error(), ""})
	case len(pids) > 0:
		out := filepath.Join(h.MemoryRoot, procs)
		items = append(items, Item{"processes", ui.Warn,
			fmt.Sprintf("%d still in it (PID %s): a cgroup with processes in it cannot be removed", len(pids), strings.Join(pids, ", ")),
			fmt.Sprintf("when you are done, exit the shell you put in it (or move it out: echo %s | sudo tee %s), then sudo rmdir %s", pids[0], out, dir)})
	default:
		items = append(items, Item{"processes", ui.OK, "none left in it", "remove it when you are done: sudo rmdir " + dir})
	}
	return items
}

// swapItem: with swap on, a hog may be swapped out instead of killed,
// unless the cgroup's swap is limited too.
func swapItem(e Env, h cgroup.Host, dir string) Item {
	n, _, err := proc.Root(e.ProcRoot).Swaps()
	on := n > 0
	if err != nil {
		return Item{"swap", ui.Warn, err.Error(), "see whether swap is on: swapon --show"}
	}
	if !on {
		return Item{"swap", ui.OK, "no swap on this machine: the hog cannot escape into it", ""}
	}
	limit := strconv.FormatInt(e.Limit, 10)
	if h.MemoryVersion == 2 {
		f := filepath.Join(dir, "memory.swap.max")
		v, err := readValue(f)
		switch {
		case err != nil:
			return Item{"swap", ui.Warn, "swap is on and " + f + " is missing: the hog may swap instead of being killed", "for the workshop: sudo swapoff -a"}
		case v != "0":
			return Item{"swap", ui.Warn, "swap is on and memory.swap.max is " + v + ": the hog may swap instead of being killed", "echo 0 | sudo tee " + f}
		}
		return Item{"swap", ui.OK, "swap is on, but memory.swap.max = 0: none for this cgroup", ""}
	}
	f := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	v, err := readValue(f)
	switch {
	case err != nil:
		return Item{"swap", ui.Warn, "swap is on and this kernel does not account swap per cgroup (no memory.memsw.limit_in_bytes): the hog may swap instead of being killed",
			"for the workshop: sudo swapoff -a (or boot with swapaccount=1)"}
	case v != limit:
		return Item{"swap", ui.Warn, "swap is on and memory.memsw.limit_in_bytes is " + v + ": the hog may swap instead of being killed",
			"limit memory plus swap to the same: echo " + limit + " | sudo tee " + f}
	}
	return Item{"swap", ui.OK, "swap is on, but memory.memsw.limit_in_bytes = " + v + ": no room for swap", ""}
}

// probeCgroup makes and removes a cgroup under underhood's parent, as
// underhood's step does.
func probeCgroup(e Env, h cgroup.Host) Item {
	const name = "a cgroup with the limit"
	if e.Euid != 0 {
		return Item{name, ui.Fail, "not tried: needs root", needRoot}
	}
	out, err := e.Try(Probe{Kind: TryCgroup, Host: h, Limit: e.Limit})
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "sudo underhood doctor says what stops it"}
	}
	return Item{name, ui.OK, out + ": underhood's step makes, uses and removes its cgroup the same way, so it leaves none to look at", ""}
}

// describeLimit says what a limit file's value means.
func describeLimit(v string) string {
	if v == "max" {
		return "no limit yet"
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return "not a number"
	}
	if n >= 1<<62 {
		return "no limit yet (the largest number the kernel takes)"
	}
	return cgroup.FormatSize(n)
}

func readValue(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readPids(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// keyed reads one "key value" line of a flat-keyed file.
func keyed(path, key string) (int64, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil, err
		}
	}
	return 0, false, nil
}
