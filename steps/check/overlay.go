package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/overlay"
	"github.com/underhood/underhood/lab/ui"
)

// Overlay checks an overlay with the root filesystem as its lower layer:
// the kernel has overlayfs; the root is in place to be a lower; an overlay
// mounted by hand on it (mount -t overlay) is there, and its upper
// directory holds what was written or deleted through it. underhood's own
// step mounts and unmounts its overlays within a run, so without --rootfs
// no mount is the expected state.
func Overlay(e Env) []Item {
	items := []Item{overlayFS(e), readyRoot(e)}
	mounts, err := overlaysOn(e)
	if err != nil {
		return append(items, Item{"overlay mount", ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}, skipped("upper directory"))
	}
	if len(mounts) == 0 {
		if !e.ByHand {
			return append(items, Item{"overlay mount", ui.OK, "none on the host: underhood's runs mount their overlay and unmount it when they end", ""})
		}
		base := filepath.Join(filepath.Dir(e.Rootfs), "box")
		mk := fmt.Sprintf("mkdir -p %[1]s/upper %[1]s/work %[1]s/merged && sudo mount -t overlay overlay -o lowerdir=%[2]s,upperdir=%[1]s/upper,workdir=%[1]s/work %[1]s/merged", base, e.Rootfs)
		return append(items, Item{"overlay mount", ui.Fail, "no overlay has " + e.Rootfs + " as its lower layer", mk}, skipped("upper directory"))
	}
	m := mounts[len(mounts)-1]
	upper := superOption(m.SuperOption, "upperdir")
	items = append(items, Item{"overlay mount", ui.OK, fmt.Sprintf("%s: lower %s, upper %s", m.Mountpoint, e.Rootfs, upper),
		"unmount it when you are done: sudo umount " + m.Mountpoint})
	return append(items, upperItem(m.Mountpoint, upper))
}

func overlayFS(e Env) Item {
	const name = "overlayfs"
	data, err := os.ReadFile(e.proc("filesystems"))
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == "overlay" {
			return Item{name, ui.OK, "the kernel has it (" + e.proc("filesystems") + ")", ""}
		}
	}
	return Item{name, ui.Fail, "not in " + e.proc("filesystems"), "sudo modprobe overlay; without it, runs copy the root instead"}
}

// overlaysOn lists the overlays whose lower layers include the root.
func overlaysOn(e Env) ([]mount.Info, error) {
	infos, err := mount.Read(e.proc("self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	root := realPath(e.Rootfs)
	var out []mount.Info
	for _, m := range infos {
		if m.FSType != "overlay" {
			continue
		}
		for _, l := range strings.Split(superOption(m.SuperOption, "lowerdir"), ":") {
			if filepath.Clean(l) == root {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// superOption is one key's value in a mount's super options.
func superOption(opts, key string) string {
	for _, o := range strings.Split(opts, ",") {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}

// upperItem says what the upper directory holds: written files, and the
// whiteouts that deletions left.
func upperItem(merged, upper string) Item {
	const name = "upper directory"
	if upper == "" {
		return Item{name, ui.OK, "none: a read-only overlay (lower layers only)", ""}
	}
	changes, err := overlay.Changes(upper)
	if err != nil {
		return Item{name, ui.Fail, err.Error(), "look at it as root: sudo ls -la " + upper}
	}
	if len(changes) == 0 {
		return Item{name, ui.Fail, upper + " is empty: nothing was written or deleted through the overlay yet",
			fmt.Sprintf("write a file and delete one in %s (or in a chroot into it), then look at %s", merged, upper)}
	}
	var written, deleted []string
	for _, c := range changes {
		if c.What == overlay.Deleted {
			deleted = append(deleted, c.Path)
		} else {
			written = append(written, c.Path)
		}
	}
	detail := fmt.Sprintf("%d written (%s)", len(written), list(written))
	if len(deleted) > 0 {
		detail += fmt.Sprintf(", %d whiteout (%s)", len(deleted), list(deleted))
	} else {
		detail += ", no whiteout yet"
	}
	return Item{name, ui.OK, detail, ""}
}
