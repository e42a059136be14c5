package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// Leftovers checks that nothing of a container is left on the machine: no
// run in the work directory, no mount below it, the root filesystem or the
// article's /tmp/container, no cgroup below underhood's parent, no hand-made
// cgroup, no process whose root is in there, no directory the article's
// script left.
func Leftovers(e Env) []Item {
	places := outermost(e.Workdir.Root, e.Rootfs, e.ScriptDir)
	// In the order to act on them: end processes before unmounting, and
	// unmount before removing.
	var items []Item
	if !e.ByHand {
		items = append(items, ranItem(e, "full run", "run", "sudo underhood run, leave its shell with exit, then check again"))
	}
	items = append(items, runsItem(e), processesItem(e, places), mountsItem(e, places))
	h, err := cgroup.DetectWith(e.CgroupRoot, e.FSType)
	if err == nil && h.MemoryVersion != 0 {
		items = append(items, labCgroups(e, h), handMadeGone(e, h))
	}
	if err == nil {
		items = append(items, boxGone(e, h))
	}
	return append(items, scriptDirs(e))
}

func runsItem(e Env) Item {
	const name = "lab runs"
	names, err := e.Workdir.ListRuns()
	if err != nil {
		return Item{name, ui.Fail, err.Error(), ""}
	}
	var runs, foreign []string
	for _, n := range names {
		dir := e.Workdir.Run(n)
		es, err := state.ReadJournal(dir)
		if err == nil && state.Summarize(n, dir, es).Ours() {
			runs = append(runs, n)
		} else {
			foreign = append(foreign, n)
		}
	}
	switch {
	case len(runs) > 0:
		return Item{name, ui.Fail, fmt.Sprintf("%d in %s: %s", len(runs), e.Workdir.Runs(), list(runs)),
			"if none of them is still running (sudo underhood ps), remove them: sudo underhood cleanup --all"}
	case len(foreign) > 0:
		// Not a run (no journal of underhood's): cleanup leaves it alone,
		// so suggesting it would help nobody.
		return Item{name, ui.Warn, fmt.Sprintf("none, but %s in %s: not underhood's (no run journal), so cleanup leaves %s alone",
			list(foreign), e.Workdir.Runs(), plural(len(foreign), "it", "them")),
			"if it is yours, move it out of " + e.Workdir.Runs()}
	}
	return Item{name, ui.OK, "none in " + e.Workdir.Runs(), ""}
}

func mountsItem(e Env, places []string) Item {
	const name = "mounts"
	infos, err := mount.Read(e.proc("self", "mountinfo"))
	if err != nil {
		return Item{name, ui.Fail, err.Error(), ""}
	}
	seen := map[string]int{} // mounts at each mount point: one may be stacked on another
	var lab, other []string
	total := 0
	for _, p := range places {
		if p == "" {
			continue
		}
		// Strictly below: a work directory on a mount of its own is how
		// someone set the machine up, not something a run left.
		for _, m := range mount.Under(infos, realPath(p)) {
			if m.Mountpoint == realPath(p) {
				continue
			}
			total++
			if seen[m.Mountpoint]++; seen[m.Mountpoint] > 1 {
				continue
			}
			if within(realPath(e.Workdir.Root), m.Mountpoint) {
				lab = append(lab, m.Mountpoint)
			} else {
				other = append(other, m.Mountpoint)
			}
		}
	}
	if total == 0 {
		return Item{name, ui.OK, "none below " + strings.Join(nonEmpty(places), ", "), ""}
	}
	var fix []string
	if len(lab) > 0 {
		fix = append(fix, "sudo underhood cleanup --all")
	}
	// A mount point with n mounts on it takes n umounts.
	var shown []string
	for _, p := range append(append([]string{}, lab...), other...) {
		if n := seen[p]; n > 1 {
			shown = append(shown, fmt.Sprintf("%s (%d times)", p, n))
		} else {
			shown = append(shown, p)
		}
	}
	for _, p := range other {
		for i := 0; i < seen[p]; i++ {
			fix = append(fix, "sudo umount "+p)
		}
	}
	if len(other) > 1 && total == len(lab)+len(other) {
		fix = append(fix[:len(fix)-len(other)], "sudo umount "+strings.Join(other, " "))
	}
	return Item{name, ui.Fail, fmt.Sprintf("%d left: %s", total, list(shown)), strings.Join(fix, "; ")}
}

// labCgroups looks for the cgroups of this work directory's runs below
// underhood's parent. Others there belong to other work directories, other
// users or running containers: they are counted, never judged.
func labCgroups(e Env, h cgroup.Host) Item {
	const name = "lab cgroups"
	parent := filepath.Join(h.MemoryRoot, cgroup.DefaultParent)
	runs, _ := e.Workdir.ListRuns()
	mine := map[string]bool{}
	for _, r := range runs {
		mine[r] = true
	}
	var found []string
	others := 0
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() || p == parent {
			return nil
		}
		if mine[d.Name()] {
			found = append(found, p)
		} else if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil && !hasSubdirs(p) {
			others++
		}
		return nil
	})
	if err != nil {
		return Item{name, ui.Fail, err.Error(), ""}
	}
	if len(found) == 0 {
		detail := "none of this work directory's below " + parent
		if others > 0 {
			detail += fmt.Sprintf(" (%d %s there: not this lab's, not judged)", others, plural(others, "other", "others"))
		}
		return Item{name, ui.OK, detail, ""}
	}
	return Item{name, ui.Fail, fmt.Sprintf("%d of this work directory's runs: %s", len(found), list(found)),
		"sudo underhood cleanup --all"}
}

func hasSubdirs(dir string) bool {
	ents, _ := os.ReadDir(dir)
	return slices.ContainsFunc(ents, fs.DirEntry.IsDir)
}

// handMadeGone looks for the cgroups the article makes by hand: "busybox"
// in its cgroup section, "busybox-$$" (a shell's PID) in its script.
func handMadeGone(e Env, h cgroup.Host) Item {
	name := "cgroup " + e.Cgroup
	var left []string
	ents, _ := os.ReadDir(h.MemoryRoot)
	for _, d := range ents {
		if d.IsDir() && (d.Name() == e.Cgroup || isScriptCgroup(d.Name(), e.Cgroup)) {
			left = append(left, filepath.Join(h.MemoryRoot, d.Name()))
		}
	}
	if len(left) == 0 {
		return Item{name, ui.OK, "gone (" + filepath.Join(h.MemoryRoot, e.Cgroup) + ", " + e.Cgroup + "-PID)", ""}
	}
	// A process in it keeps rmdir from working: typed by hand, the
	// script's pid=$$ is the terminal's own shell, which put itself in.
	// Moved back to the top cgroup, as the script's last lines do, it goes
	// on; exiting it would close the terminal.
	var in []string
	var move []string
	for _, d := range left {
		pids, _ := readPids(filepath.Join(d, "cgroup.procs"))
		for _, p := range pids {
			pid, _ := strconv.Atoi(p)
			if pid == os.Getpid() {
				continue // this check, started from a shell in there: gone in a moment
			}
			who := "PID " + p
			if c := comm(e, pid); c != "" {
				who += " (" + c + ")"
			}
			in = append(in, who)
			move = append(move, "echo "+p+" | sudo tee "+filepath.Join(h.MemoryRoot, "cgroup.procs"))
		}
	}
	if len(in) > 0 {
		return Item{name, ui.Fail, list(left) + ": made by hand for the memory limit, still there, with " + strings.Join(in, ", ") + " in it",
			"move them out, as the script's last lines do (a shell you typed the script into is one of them): " + strings.Join(move, " && ") + " && sudo rmdir " + strings.Join(left, " ")}
	}
	return Item{name, ui.Fail, list(left) + ": made by hand for the memory limit, still there", "sudo rmdir " + strings.Join(left, " ")}
}

// isScriptCgroup: the article's script names its cgroup busybox-<PID>.
func isScriptCgroup(name, base string) bool {
	pid, ok := strings.CutPrefix(name, base+"-")
	if !ok || pid == "" {
		return false
	}
	_, err := strconv.Atoi(pid)
	return err == nil
}

// processesItem finds processes whose root directory is inside places:
// a chroot or container shell still open in another terminal.
func processesItem(e Env, places []string) Item {
	const name = "processes"
	if e.Euid != 0 {
		// Another user's /proc/PID/root cannot be read: "none" would be a guess.
		return Item{name, Skip, "not looked at: reading other users' processes needs root", "sudo underhood check 7"}
	}
	ents, err := os.ReadDir(e.ProcRoot)
	if err != nil {
		return Item{name, ui.Fail, err.Error(), ""}
	}
	var found, pids []string
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid <= 0 {
			continue
		}
		root, err := os.Readlink(e.proc(d.Name(), "root"))
		if err != nil {
			continue
		}
		for _, p := range places {
			if p != "" && within(realPath(p), root) {
				comm, _ := os.ReadFile(e.proc(d.Name(), "comm"))
				found = append(found, fmt.Sprintf("PID %d (%s) has its root in %s", pid, strings.TrimSpace(string(comm)), root))
				pids = append(pids, d.Name())
				break
			}
		}
	}
	if len(found) == 0 {
		return Item{name, ui.OK, "none has its root in " + strings.Join(nonEmpty(places), ", "), ""}
	}
	return Item{name, ui.Fail, list(found), "exit those shells (type exit in them), or end them: sudo kill -9 " + strings.Join(pids, " ") + " (a PID 1 ignores a plain kill)"}
}

// scriptDirs: the article's script removes /tmp/container/<pid> at its
// end; one left means a run was cut short.
func scriptDirs(e Env) Item {
	const name = "script directories"
	ents, err := os.ReadDir(e.ScriptDir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return Item{name, ui.OK, "none in " + e.ScriptDir, ""}
	}
	if err != nil {
		return Item{name, ui.Warn, err.Error(), ""}
	}
	var dirs []string
	for _, d := range ents {
		dirs = append(dirs, filepath.Join(e.ScriptDir, d.Name()))
	}
	return Item{name, ui.Warn, fmt.Sprintf("%d in %s, left by the article's script when it was cut short: %s", len(dirs), e.ScriptDir, list(dirs)),
		"once nothing is mounted in them (see mounts), from outside them: cd ~ && sudo rm -rf " + strings.Join(dirs, " ")}
}

func within(dir, p string) bool {
	dir = filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// outermost drops the empty places and those inside another one.
func outermost(places ...string) []string {
	var out []string
	for i, p := range places {
		if p == "" {
			continue
		}
		inside := false
		for j, q := range places {
			if i != j && q != "" && q != p && within(q, p) {
				inside = true
			}
		}
		if !inside && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// list joins names, the first few of them.
func list(ss []string) string {
	const most = 4
	if len(ss) > most {
		return strings.Join(ss[:most], ", ") + fmt.Sprintf(" and %d more", len(ss)-most)
	}
	return strings.Join(ss, ", ")
}

// boxGone looks for step 9's cgroup made by hand: box in the pids and cpu
// hierarchies on v1, one box on v2.
func boxGone(e Env, h cgroup.Host) Item {
	name := "cgroup " + LimitsBox
	dirs := []string{filepath.Join(e.CgroupRoot, "pids", LimitsBox), filepath.Join(e.CgroupRoot, "cpu", LimitsBox)}
	if h.Layout == cgroup.V2 {
		dirs = []string{filepath.Join(e.CgroupRoot, LimitsBox)}
	}
	var left []string
	for _, d := range dirs {
		if isDir(d) {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return Item{name, ui.OK, "gone (" + strings.Join(dirs, ", ") + ", step 9's by hand)", ""}
	}
	return Item{name, ui.Fail, list(left) + ": made by hand for step 9's limits, still there",
		"end what is still in it, then: sudo rmdir " + strings.Join(left, " ")}
}
