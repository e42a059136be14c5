package check

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/ui"
)

// The rows of the pivot_root check.
const (
	rowShell   = "a shell in it"
	rowMntNS   = "mount namespace"
	rowPivot   = "pivot_root"
	rowOldRoot = "old root"
)

// PivotRoot checks pivot_root done by hand: a shell whose root is the root
// filesystem, in a mount namespace of its own, whose root is the top of
// that namespace (a walk up from it, as the chroot escape does, never
// reaches the host's /), with the old root unmounted. The shell is looked
// for while it runs, in another terminal. underhood's own step leaves no
// container to look at, so without one, a real pivot_root into the root
// filesystem is tried instead, and undone.
func PivotRoot(e Env) []Item {
	root := readyRoot(e)
	items := []Item{root}
	rest := []string{rowShell, rowMntNS, rowPivot, rowOldRoot}
	if root.Status != ui.OK {
		return append(items, skipAll(rest)...)
	}
	if e.Euid != 0 {
		return append(items, Item{rowShell, ui.Fail, "not looked at: another user's root directory cannot be read", needRoot}.then(rest[1:])...)
	}
	ps, err := findInRoot(e)
	if err != nil {
		return append(items, Item{rowShell, ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}.then(rest[1:])...)
	}
	if len(ps) == 0 && !e.ByHand {
		return append(items, tryPivot(e))
	}
	if len(ps) == 0 {
		return append(items, Item{rowShell, ui.Fail, "no process has its root in " + e.Rootfs + " now",
			"in another terminal, start the page's shell and leave it open: cd " + e.Rootfs + " && sudo unshare -m -p -f --mount-proc=$PWD/proc sh -c '…' (docs/09-pivot-root.md, The fix)"}.then(rest[1:])...)
	}
	own, _ := os.Readlink(e.proc("self", "ns", "mnt"))
	// The one furthest along: its own namespace, then held.
	climbs := map[int]bool{}
	var alive []inRoot
	for _, p := range ps {
		c, err := e.Climb(e.proc(fmt.Sprint(p.PID), "root"))
		if err != nil {
			continue // it ended while it was looked at
		}
		climbs[p.PID] = c
		alive = append(alive, p)
	}
	if len(alive) == 0 {
		return append(items, Item{rowShell, ui.Fail, "the processes in " + e.Rootfs + " ended while they were looked at",
			"start the page's shell again and leave it open, then run the check again"}.then(rest[1:])...)
	}
	ps = alive
	best := slices.MinFunc(ps, func(a, b inRoot) int {
		score := func(p inRoot) int {
			s := 0
			if p.MntNS == own {
				s += 2
			}
			if climbs[p.PID] {
				s++
			}
			return s
		}
		if d := score(a) - score(b); d != 0 {
			return d
		}
		return a.PID - b.PID
	})
	detail := fmt.Sprintf("%s has its root in %s", best, e.Rootfs)
	if len(ps) > 1 {
		detail += fmt.Sprintf(" (and %d more)", len(ps)-1)
	}
	items = append(items, Item{rowShell, ui.OK, detail, ""})

	if best.MntNS == "" || best.MntNS == own {
		return append(items, Item{rowMntNS, ui.Fail, fmt.Sprintf("%s is in the host's mount namespace (%s): a plain chroot, as in step 3, and pivot_root there would move the host's own root", best, own),
			"exit it, and start the shell in a mount namespace of its own: sudo unshare -m -p -f --mount-proc=$PWD/proc sh -c '…' (docs/09-pivot-root.md)"}.then(rest[2:])...)
	}
	items = append(items, Item{rowMntNS, ui.OK, fmt.Sprintf("its own (%s), not the host's (%s)", best.MntNS, own), ""})

	infos, _ := mount.Read(e.proc(fmt.Sprint(best.PID), "mountinfo"))
	if climbs[best.PID] {
		d := "a walk up from its root (cd .., as the escape does) reaches the host's /: it was chrooted, not pivoted"
		if slices.ContainsFunc(infos, func(m mount.Info) bool { return m.Propagation() == "shared" }) {
			d += "; its mounts are shared, so pivot_root would fail with Invalid argument"
		}
		return append(items, Item{rowPivot, ui.Fail, d,
			"exit it, and start it with the page's commands: mount --make-rprivate / && mount --rbind . . && cd \"$PWD\" && mkdir -p .oldroot && pivot_root . .oldroot, before the shell"},
			skipped(rowOldRoot))
	}
	items = append(items, Item{rowPivot, ui.OK, "its root is the top of its mount namespace: a walk up from it reaches nothing of the host's", ""})

	return append(items, oldRoot(e, best, infos))
}

// oldRoot looks for the host's root mount in the process's mount table:
// pivot_root moves it to put_old, and only unmounting it takes it away.
func oldRoot(e Env, p inRoot, theirs []mount.Info) Item {
	ours, err := mount.Read(e.proc("self", "mountinfo"))
	if err != nil {
		return Item{rowOldRoot, ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}
	}
	var host mount.Info
	for _, m := range ours {
		if m.Mountpoint == "/" {
			host = m
		}
	}
	for _, m := range theirs {
		if m.Root == host.Root && m.FSType == host.FSType && m.Source == host.Source {
			return Item{rowOldRoot, ui.Fail, fmt.Sprintf("the host's root (%s on %s) is still mounted in it at %s: no need to climb, cd %s is the way out", host.FSType, host.Source, m.Mountpoint, m.Mountpoint),
				fmt.Sprintf("in that shell: busybox umount -l %s && busybox rmdir %s", m.Mountpoint, m.Mountpoint)}
		}
	}
	return Item{rowOldRoot, ui.OK, fmt.Sprintf("the host's root (%s on %s) is not mounted in its namespace: nothing to go back to", host.FSType, host.Source),
		fmt.Sprintf("when you are done, exit that shell, %s: its mount namespace, and the pivot with it, goes away", p)}
}

// tryPivot is underhood's way, tried for real: pivot_root into the root
// filesystem in a mount namespace of the probe's own.
func tryPivot(e Env) Item {
	const name = "pivot_root into it"
	out, err := e.Try(Probe{Kind: TryPivot, Path: e.Rootfs})
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "sudo underhood doctor says what this machine lacks; the page explains each Invalid argument (docs/09-pivot-root.md)"}
	}
	want, _ := os.ReadDir(e.Rootfs)
	var names []string
	for _, d := range want {
		names = append(names, d.Name())
	}
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, names) {
		return Item{name, ui.Fail, fmt.Sprintf("after pivot_root, busybox ls / from ../../.. listed %q: want only %s", strings.Join(got, " "), strings.Join(names, " ")),
			"sudo underhood doctor says what this machine lacks"}
	}
	return Item{name, ui.OK, fmt.Sprintf("in a mount namespace of its own, with the old root unmounted, busybox ls / from ../../.. lists only %s: underhood's step does the same, and leaves nothing to look at (to check yours: --rootfs)", strings.Join(names, " ")), ""}
}

func skipAll(names []string) []Item {
	var out []Item
	for _, n := range names {
		out = append(out, skipped(n))
	}
	return out
}

// then is the item followed by the rows that wait on it.
func (it Item) then(waiting []string) []Item { return append([]Item{it}, skipAll(waiting)...) }
