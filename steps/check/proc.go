package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/ui"
)

// readyRoot checks that a container can start from the root filesystem:
// the layout and a static, executable bin/busybox.
func readyRoot(e Env) Item {
	const name = "root filesystem"
	fix := e.fix("finish it first: sudo underhood check 2 --rootfs "+e.Rootfs+"; sudo underhood check 3 --rootfs "+e.Rootfs, "sudo underhood rootfs")
	if err := rootfs.Check(e.Rootfs); err != nil {
		var nr *rootfs.NotReadyError
		if errors.As(err, &nr) {
			return Item{name, ui.Fail, nr.Problem, fix}
		}
		return Item{name, ui.Fail, err.Error(), fix}
	}
	if err := busybox.CheckStatic(rootfs.Busybox(e.Rootfs)); err != nil {
		return Item{name, ui.Fail, "bin/busybox cannot run in it: " + err.Error(), fix}
	}
	return Item{name, ui.OK, e.Rootfs + ": bin dev etc proc sys, and a static bin/busybox", ""}
}

// realPath is how mountinfo names dir: without symbolic links.
func realPath(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return filepath.Clean(dir)
}

// Proc checks mounting proc in the root filesystem: the article mounts it
// on the host at rootfs/proc while the attendee explores, and unmounts it
// afterwards, so both states are right. A real try shows that with proc
// mounted the chroot sees the host's processes.
func Proc(e Env) []Item {
	root := readyRoot(e)
	items := []Item{root, procMount(e)}
	if root.Status != ui.OK {
		return append(items, skipped("ps in the chroot"))
	}
	return append(items, tryPS(e, TryProc))
}

func procMount(e Env) Item {
	const name = "proc mount"
	target := filepath.Join(e.Rootfs, "proc")
	infos, err := mount.Read(e.proc("self", "mountinfo"))
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}
	}
	real := filepath.Join(realPath(e.Rootfs), "proc")
	var here []mount.Info
	for _, m := range infos {
		if m.Mountpoint == real {
			here = append(here, m)
		}
	}
	umount := "sudo umount " + target
	switch {
	case len(here) == 0 && !e.ByHand:
		return Item{name, ui.OK, "not mounted on the host: underhood mounts proc in a private mount namespace of the container's, so the host's mount table never shows it", ""}
	case len(here) == 0:
		return Item{name, ui.Warn, "not mounted at " + target + " now, so this check cannot see your step 4: it is still ahead of you, or you did it and unmounted proc again, as you should",
			"to see it: sudo mount -t proc proc " + target + ", run this check again, then " + umount}
	}
	last := here[len(here)-1]
	if last.FSType != "proc" {
		return Item{name, ui.Fail, fmt.Sprintf("%s is mounted at %s, not proc", last.FSType, target),
			umount + " && sudo mount -t proc proc " + target}
	}
	if len(here) > 1 {
		return Item{name, ui.Warn, fmt.Sprintf("proc is mounted %d times at %s, one on top of the other", len(here), target),
			fmt.Sprintf("when you are done, unmount it %d times: %s", len(here), umount)}
	}
	return Item{name, ui.OK, "proc is mounted at " + target + ": good while you explore",
		"unmount it when you are done: " + umount}
}

// tryPS runs busybox ps -A chrooted into the root with proc mounted, in the
// host's PID namespace (ProcInChroot) or a new one (PIDNamespace).
func tryPS(e Env, kind ProbeKind) Item {
	name := "ps in the chroot"
	if kind == TryPIDNamespace {
		name = "alone as PID 1"
	}
	if e.Euid != 0 {
		return Item{name, ui.Fail, "not tried: needs root", needRoot}
	}
	host, err := e.HostBusybox()
	if err != nil {
		return Item{name, ui.Fail, "no verified BusyBox to mount proc with: " + err.Error(),
			"sudo underhood download (or sudo apt-get install busybox-static)"}
	}
	out, err := e.Try(Probe{Kind: kind, Path: e.Rootfs, Busybox: host})
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "sudo underhood doctor says what this machine lacks"}
	}
	n, first := processes(out)
	if kind == TryProc {
		if n < 2 {
			return Item{name, ui.Fail, fmt.Sprintf("with proc mounted, busybox ps -A listed %d processes: want the host's", n),
				"sudo underhood doctor says what this machine lacks"}
		}
		return Item{name, ui.OK, fmt.Sprintf("with proc mounted, busybox ps -A lists %d processes: every process of the host", n), ""}
	}
	if n != 1 || first != "1" {
		return Item{name, ui.Fail, fmt.Sprintf("in a new PID namespace, busybox ps -A listed %d processes (the first PID %s): want itself alone, as PID 1", n, first),
			"sudo underhood doctor says what this machine lacks"}
	}
	return Item{name, ui.OK, "in a new PID namespace, busybox ps -A lists 1 process: itself, as PID 1", ""}
}

// PIDNamespace checks what isolating processes needs: unshare(1) for the
// article's command, PID and mount namespaces in the kernel, and a real try.
func PIDNamespace(e Env) []Item {
	var items []Item
	if p, err := e.LookPath("unshare"); err == nil {
		items = append(items, Item{"unshare command", ui.OK, p, ""})
	} else if e.ByHand {
		items = append(items, Item{"unshare command", ui.Fail, "not installed: the article's command needs it", "sudo apt-get install util-linux"})
	} else {
		items = append(items, Item{"unshare command", ui.Warn, "not installed: the article's command needs it; underhood makes the namespaces itself",
			"for the shell way: sudo apt-get install util-linux"})
	}
	kernel := true
	for _, ns := range []struct{ typ, what string }{{"pid", "PID namespaces"}, {"mnt", "mount namespaces"}} {
		p := e.proc("self", "ns", ns.typ)
		if _, err := os.Lstat(p); err != nil {
			kernel = false
			items = append(items, Item{ns.what, ui.Fail, "this kernel has none: " + p + " is missing",
				"use a kernel built with namespaces, e.g. the workshop's VM (docs/vm.md)"})
			continue
		}
		items = append(items, Item{ns.what, ui.OK, "the kernel has them: " + p, ""})
	}
	root := readyRoot(e)
	items = append(items, root)
	if !kernel || root.Status != ui.OK {
		return append(items, skipped("alone as PID 1"))
	}
	return append(items, tryPS(e, TryPIDNamespace))
}
