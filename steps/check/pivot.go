package check

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/underhood/underhood/lab/ui"
)

// pivotCmd is page 9's pivot_root by hand, ending in a shell to keep open.
const pivotCmd = "cd ~/container and run the page's sudo unshare -m -p -f --mount-proc=$PWD/proc sh -ec '…pivot_root…' (keep its shell open)"

// PivotRoot checks step 8 done by hand: a process whose root is the root
// filesystem, in a mount namespace of its own, whose / is that namespace's
// root mount (pivot_root, not chroot: a chrooted process sees no mount at
// its /), and in whose namespace the host's root is not mounted any more
// (put_old unmounted), so that the escape has nothing to climb to.
func PivotRoot(e Env) []Item {
	cands := inRoot(e)
	if len(cands) == 0 {
		if !e.ByHand {
			return []Item{tryPivot(e)}
		}
		return []Item{{"a process in the root", ui.Fail, "no process has its root in " + e.Rootfs, pivotCmd + "; then, from another terminal: sudo underhood check 8 --rootfs " + e.Rootfs},
			skipped("mount namespace"), skipped("pivot_root"), skipped("old root")}
	}
	self, _ := os.Readlink(filepath.Join(e.ProcRoot, "self", "ns", "mnt"))
	host := hostRootMount(filepath.Join(e.ProcRoot, "self", "mountinfo"))
	var best []Item
	for _, pid := range cands {
		if items := judgePivot(e, pid, self, host); best == nil || passes(items) >= passes(best) { // ties: the later PID, the shell rather than unshare
			best = items
		}
	}
	return best
}

// tryPivot pivots into the lab's root for real, in a mount namespace that
// goes with the probe: what the pivoted process sees must be its root as
// a mount of its own, its proc, and nothing of the host's.
func tryPivot(e Env) Item {
	const name = "pivot_root"
	if e.Euid != 0 {
		return Item{name, ui.Fail, "not tried: needs root", needRoot}
	}
	host, err := e.HostBusybox()
	if err != nil {
		return Item{name, ui.Fail, "no verified BusyBox to pivot with: " + err.Error(), "sudo underhood download (or sudo apt-get install busybox-static)"}
	}
	out, err := e.Try(Probe{Kind: TryPivot, Path: e.Rootfs, Busybox: host})
	if err != nil {
		return Item{name, ui.Fail, "pivot_root into " + e.Rootfs + ": " + err.Error(), "sudo underhood doctor says what this machine lacks"}
	}
	points := mountPoints(out)
	if !slices.Equal(points, []string{"/", "/proc"}) {
		return Item{name, ui.Fail, fmt.Sprintf("after pivot_root into %s the process sees the mounts %s: want / and /proc alone", e.Rootfs, strings.Join(points, " ")),
			"sudo underhood doctor says what this machine lacks"}
	}
	return Item{name, ui.OK, "tried into " + e.Rootfs + ": its / is a mount of its own, with /proc and nothing of the host's",
		"to do it by hand: " + pivotCmd + ", then, from another terminal: sudo underhood check 8 --rootfs ~/container"}
}

// mountPoints are the mount points of a mountinfo, in its order.
func mountPoints(mountinfo string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(mountinfo), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

func judgePivot(e Env, pid int, selfNS, host string) []Item {
	dir := filepath.Join(e.ProcRoot, strconv.Itoa(pid))
	comm, _ := readValue(filepath.Join(dir, "comm"))
	who := fmt.Sprintf("PID %d (%s)", pid, comm)
	items := []Item{{"a process in the root", ui.OK, who + " has its root in " + e.Rootfs, ""}}
	ns, _ := os.Readlink(filepath.Join(dir, "ns", "mnt"))
	if ns == "" || ns == selfNS {
		return append(items, Item{"mount namespace", ui.Fail, who + " shares this shell's mount namespace: pivot_root would change the host's root", "start it with unshare -m, as the page does"},
			skipped("pivot_root"), skipped("old root"))
	}
	items = append(items, Item{"mount namespace", ui.OK, who + ": " + ns + ", its own", ""})
	mounts := readMountinfo(filepath.Join(dir, "mountinfo"))
	root := false
	for _, m := range mounts {
		root = root || m.point == "/"
	}
	if !root {
		return append(items, Item{"pivot_root", ui.Fail, who + " sees no mount at its /: it is chrooted, and the escape walks out (sudo underhood pivot-root shows it)", pivotCmd},
			skipped("old root"))
	}
	items = append(items, Item{"pivot_root", ui.OK, who + ": its / is its namespace's root mount: pivoted, not chrooted", ""})
	for _, m := range mounts {
		if host != "" && m.dev+" "+m.root == host {
			return append(items, Item{"old root", ui.Fail, "the host's root is still mounted in its namespace at " + m.point + ": the escape can reach it there",
				"in that shell: busybox umount -l " + m.point + " && busybox rmdir " + m.point})
		}
	}
	return append(items, Item{"old root", ui.OK, fmt.Sprintf("the host's root is not mounted in its namespace (%d mounts there): nothing to climb to", len(mounts)), ""})
}

// inRoot: the processes whose root directory is e.Rootfs itself.
func inRoot(e Env) []int {
	want, err := os.Stat(e.Rootfs)
	if err != nil {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir(e.ProcRoot)
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join(e.ProcRoot, d.Name(), "root")); err == nil && sameFile(fi, want) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

type mountLine struct{ dev, root, point string }

func readMountinfo(path string) []mountLine {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ms []mountLine
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 5 {
			ms = append(ms, mountLine{dev: f[2], root: f[3], point: f[4]})
		}
	}
	return ms
}

// hostRootMount is "major:minor root" of the mount at this process's /.
func hostRootMount(path string) string {
	for _, m := range readMountinfo(path) {
		if m.point == "/" {
			return m.dev + " " + m.root
		}
	}
	return ""
}

func passes(items []Item) (n int) {
	for _, it := range items {
		if it.Status == ui.OK {
			n++
		}
	}
	return n
}
