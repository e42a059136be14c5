package check

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ui"
)

// LimitsCgroup is the cgroup the limits page makes by hand.
const LimitsCgroup = "box"

// The rows of the limits check.
const (
	rowControllers = "pids and cpu controllers"
	rowTasks       = "task limit"
	rowRefused     = "forks refused"
	rowCPU         = "CPU limit"
	rowThrottled   = "throttled"
	rowProcesses   = "processes"
)

// limitsHost is where the pids and cpu controllers are: the cgroup2 tree on
// v2 (one directory holds every file), or a hierarchy each on v1.
type limitsHost struct {
	v2        bool
	pids, cpu string // the hierarchies' roots
}

func findLimitsHost(e Env, h cgroup.Host) (limitsHost, error) {
	if h.MemoryVersion == 2 {
		l := limitsHost{v2: true, pids: h.MemoryRoot, cpu: h.MemoryRoot}
		set, _ := os.ReadFile(filepath.Join(h.MemoryRoot, "cgroup.controllers"))
		var missing []string
		for _, c := range []string{"pids", "cpu"} {
			if !strings.Contains(" "+strings.TrimSpace(string(set))+" ", " "+c+" ") {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return l, fmt.Errorf("no %s in %s", strings.Join(missing, " nor "), filepath.Join(h.MemoryRoot, "cgroup.controllers"))
		}
		return l, nil
	}
	l := limitsHost{pids: filepath.Join(h.Root, "pids"), cpu: filepath.Join(h.Root, "cpu")}
	var missing []string
	for _, d := range []string{l.pids, l.cpu} {
		if t, err := e.FSType(d); err != nil || t != unix.CGROUP_SUPER_MAGIC {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		return l, fmt.Errorf("no cgroup v1 hierarchy at %s", strings.Join(missing, " nor "))
	}
	return l, nil
}

// Limits checks the task and CPU limits made by hand, as the page does:
// pids.max and cpu.max (v2) or cpu.cfs_quota_us (v1) in a cgroup of the
// attendee's ("box", or step 6's "busybox" with the limits added), and the
// kernel's counters that show they bit: forks refused (pids.events max) and
// periods throttled (cpu.stat nr_throttled). underhood's own step removes
// its cgroups within the run, so without a hand-made one a probe cgroup
// with both limits is made and removed instead.
func Limits(e Env) []Item {
	rest := []string{"cgroup " + LimitsCgroup, rowTasks, rowRefused, rowCPU, rowThrottled, rowProcesses}
	h, err := cgroup.DetectWith(e.CgroupRoot, e.FSType)
	if err != nil || h.MemoryVersion == 0 {
		detail := fmt.Sprintf("no cgroup controllers under %s (layout %s)", e.CgroupRoot, h.Layout)
		if err != nil {
			detail = err.Error()
		}
		return Item{rowControllers, ui.Fail, detail, "sudo underhood doctor says what to change"}.then(rest)
	}
	l, err := findLimitsHost(e, h)
	if err != nil {
		return Item{rowControllers, ui.Fail, err.Error(), "sudo underhood doctor says what to change"}.then(rest)
	}
	items := []Item{{rowControllers, ui.OK, map[bool]string{true: "cgroup v2 at " + l.pids + ": pids.max and cpu.max in one directory",
		false: "cgroup v1 at " + l.pids + " and " + l.cpu + ": a cgroup in each"}[l.v2], ""}}

	// Step 6's cgroup counts when working by hand (the limits may be added
	// to it); for underhood's own way, a busybox cgroup is step 6's leftover.
	names := []string{LimitsCgroup}
	if e.ByHand {
		names = append(names, e.Cgroup)
	}
	name := ""
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(l.pids, n)); err == nil && fi.IsDir() {
			name = n
			break
		}
	}
	if name == "" && !e.ByHand {
		return append(items, probeLimits(e, h))
	}
	if name == "" {
		pdir, cdir := filepath.Join(l.pids, LimitsCgroup), filepath.Join(l.cpu, LimitsCgroup)
		mk := fmt.Sprintf("sudo mkdir %s %s && echo 64 | sudo tee %s/pids.max", pdir, cdir, pdir)
		if l.v2 {
			mk = fmt.Sprintf("echo '+pids +cpu' | sudo tee %s && sudo mkdir %s && echo 64 | sudo tee %s/pids.max", filepath.Join(l.pids, "cgroup.subtree_control"), pdir, pdir)
		}
		return append(items, Item{"cgroup " + LimitsCgroup, ui.Fail, fmt.Sprintf("no cgroup %s (nor %s) in %s", LimitsCgroup, e.Cgroup, l.pids), mk}.then(rest[1:])...)
	}
	pdir, cdir := filepath.Join(l.pids, name), filepath.Join(l.cpu, name)
	items = append(items, Item{"cgroup " + name, ui.OK, map[bool]string{true: pdir, false: pdir + " and " + cdir}[l.v2], ""})
	procs := filepath.Join(pdir, "cgroup.procs")
	items = append(items, taskItems(l, pdir, procs)...)
	items = append(items, cpuItems(l, cdir, procs)...)
	return append(items, leftIn(l, pdir, cdir))
}

func taskItems(l limitsHost, dir, procs string) []Item {
	f := filepath.Join(dir, "pids.max")
	set := "echo 64 | sudo tee " + f
	v, err := readValue(f)
	switch {
	case errors.Is(err, fs.ErrNotExist) && l.v2:
		sub := filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")
		return []Item{{rowTasks, ui.Fail, "no pids.max in " + dir + ": the pids controller is not on for the cgroups below " + filepath.Dir(dir),
			fmt.Sprintf("sudo rmdir %s && echo +pids | sudo tee %s && sudo mkdir %s && %s", dir, sub, dir, set)}, skipped(rowRefused)}
	case err != nil:
		return []Item{{rowTasks, ui.Fail, err.Error(), set}, skipped(rowRefused)}
	case v == "max":
		return []Item{{rowTasks, ui.Fail, "pids.max is max: no limit yet, a fork storm in it takes the machine's process table", set}, skipped(rowRefused)}
	}
	items := []Item{{rowTasks, ui.OK, "pids.max = " + v + ": the kernel refuses a fork past " + v + " tasks", ""}}
	// Many sleeps past the limit show it safely: each one refused is counted.
	try := fmt.Sprintf("sudo sh -c 'echo $$ > %s; for i in $(seq %s); do sleep 3 & done; wait'", procs, moreThan(v))
	n, ok, err := keyed(filepath.Join(dir, "pids.events"), "max")
	switch {
	case err != nil || !ok:
		items = append(items, Item{rowRefused, ui.Warn, "cannot tell: no pids.events in " + dir + " (a kernel before 4.3)", "watch the shell say can't fork instead: " + try})
	case n == 0:
		items = append(items, Item{rowRefused, ui.Fail, "pids.events max = 0: the limit has refused nothing yet", "start more processes than the limit in it: " + try})
	default:
		items = append(items, Item{rowRefused, ui.OK, fmt.Sprintf("pids.events max = %d: the kernel refused %d forks at the limit", n, n), ""})
	}
	return items
}

// moreThan is a count past the limit v, for the hint's loop.
func moreThan(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n > 200 {
		return "100"
	}
	return strconv.Itoa(n + 10)
}

func cpuItems(l limitsHost, dir, procs string) []Item {
	spin := fmt.Sprintf("sudo sh -c 'echo $$ > %s; timeout 2 sh -c \"while :; do :; done\"'", procs)
	if l.v2 {
		f := filepath.Join(dir, "cpu.max")
		set := "echo '20000 100000' | sudo tee " + f
		v, err := readValue(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			sub := filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")
			return []Item{{rowCPU, ui.Fail, "no cpu.max in " + dir + ": the cpu controller is not on for the cgroups below " + filepath.Dir(dir),
				fmt.Sprintf("echo +cpu | sudo tee %s (with the cgroup empty), then %s", sub, set)}, skipped(rowThrottled)}
		case err != nil:
			return []Item{{rowCPU, ui.Fail, err.Error(), set}, skipped(rowThrottled)}
		}
		quota, period, _ := strings.Cut(v, " ")
		if quota == "max" {
			return []Item{{rowCPU, ui.Fail, "cpu.max is " + v + ": no limit yet, a busy loop in it takes a whole CPU", set}, skipped(rowThrottled)}
		}
		return []Item{{rowCPU, ui.OK, fmt.Sprintf("cpu.max = %s: %s", v, share(quota, period)), ""}, throttled(dir, spin)}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return []Item{{rowCPU, ui.Fail, "no cgroup " + dir + ": on v1 the cpu controller is a hierarchy of its own",
			fmt.Sprintf("sudo mkdir %s && echo 20000 | sudo tee %s/cpu.cfs_quota_us", dir, dir)}, skipped(rowThrottled)}
	}
	qf := filepath.Join(dir, "cpu.cfs_quota_us")
	set := "echo 20000 | sudo tee " + qf
	quota, err := readValue(qf)
	if err != nil {
		return []Item{{rowCPU, ui.Fail, err.Error(), set}, skipped(rowThrottled)}
	}
	if quota == "-1" {
		return []Item{{rowCPU, ui.Fail, "cpu.cfs_quota_us is -1: no limit yet, a busy loop in it takes a whole CPU", set}, skipped(rowThrottled)}
	}
	period, _ := readValue(filepath.Join(dir, "cpu.cfs_period_us"))
	// On v1 the cpu cgroup has processes of its own.
	spin = fmt.Sprintf("sudo sh -c 'echo $$ > %s; timeout 2 sh -c \"while :; do :; done\"'", filepath.Join(dir, "cgroup.procs"))
	return []Item{{rowCPU, ui.OK, fmt.Sprintf("cpu.cfs_quota_us = %s of cpu.cfs_period_us = %s: %s", quota, period, share(quota, period)), ""}, throttled(dir, spin)}
}

// share says what a quota of period means.
func share(quota, period string) string {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || p <= 0 {
		return "a CPU limit"
	}
	return fmt.Sprintf("%.0f %% of one CPU", 100*q/p)
}

func throttled(dir, spin string) Item {
	n, ok, err := keyed(filepath.Join(dir, "cpu.stat"), "nr_throttled")
	switch {
	case err != nil || !ok:
		return Item{rowThrottled, ui.Warn, "cannot tell: no nr_throttled in " + filepath.Join(dir, "cpu.stat"), ""}
	case n == 0:
		return Item{rowThrottled, ui.Fail, "cpu.stat nr_throttled = 0: nothing in it has used its quota yet", "run a busy loop in it: " + spin}
	}
	return Item{rowThrottled, ui.OK, fmt.Sprintf("cpu.stat nr_throttled = %d: the kernel stopped it in %d periods, at its quota", n, n), ""}
}

// leftIn: the processes still in the cgroups, which keep them from being
// removed.
func leftIn(l limitsHost, pdir, cdir string) Item {
	dirs := []string{pdir}
	if !l.v2 {
		dirs = append(dirs, cdir)
	}
	var pids []string
	for _, d := range dirs {
		p, _ := readPids(filepath.Join(d, "cgroup.procs"))
		for _, x := range p {
			if !strings.Contains(" "+strings.Join(pids, " ")+" ", " "+x+" ") {
				pids = append(pids, x)
			}
		}
	}
	rm := "sudo rmdir " + strings.Join(dirs, " ")
	if len(pids) > 0 {
		return Item{rowProcesses, ui.Warn, fmt.Sprintf("%d still in it (PID %s): a cgroup with processes in it cannot be removed", len(pids), strings.Join(pids, ", ")),
			"when you are done, end them or exit the shell in it, then: " + rm}
	}
	return Item{rowProcesses, ui.OK, "none left in it", "remove it when you are done: " + rm}
}

// probeLimits makes and removes a cgroup with both limits under
// underhood's parent, as underhood's step does.
func probeLimits(e Env, h cgroup.Host) Item {
	const name = "a cgroup with the limits"
	if e.Euid != 0 {
		return Item{name, ui.Fail, "not tried: needs root", needRoot}
	}
	out, err := e.Try(Probe{Kind: TryLimits, Host: h})
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "sudo underhood doctor says what stops it"}
	}
	return Item{name, ui.OK, out + ": underhood's step makes, uses and removes its cgroups the same way (to check yours: --rootfs)", ""}
}

// makeLimits is what step 9 does first, undone at once.
func makeLimits(h cgroup.Host) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	m, err := cgroup.New(h, cgroup.DefaultParent, "check-"+hex.EncodeToString(b))
	if err != nil {
		return "", err
	}
	if err := m.Create(cgroup.DefaultLimit); err != nil {
		return "", err
	}
	err = m.SetLimits(cgroup.Limits{Pids: 64, CPUQuota: 20000, CPUPeriod: cgroup.DefaultCPUPeriod})
	if rerr := m.Remove(); rerr != nil {
		return "", fmt.Errorf("made %s but cannot remove it: %w; remove it by hand: sudo rmdir %s", m.Path(), rerr, m.Path())
	}
	if err != nil {
		return "", fmt.Errorf("made %s, but: %w", m.Path(), err)
	}
	return fmt.Sprintf("made %s with pids.max = 64 and 20 %% of one CPU, and removed it", m.Path()), nil
}
