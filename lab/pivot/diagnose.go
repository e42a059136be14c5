package pivot

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/mount"
)

// Diagnose says which of pivot_root(2)'s conditions rules out newRoot, by
// reading the mount table at mountinfo (the process's own, or a fixture):
// the EINVAL that pivot_root gives is the same for all of them. It returns
// "" when none of those it knows applies.
func Diagnose(mountinfo, newRoot string) string {
	infos, err := mount.Read(mountinfo)
	if err != nil {
		return ""
	}
	root, ok := at(infos, "/")
	switch {
	case ok && (root.FSType == "rootfs" || root.FSType == "ramfs" && root.Parent == root.ID):
		return "the current root is the initial ramfs, which pivot_root cannot move; " +
			"runc uses MS_MOVE + chroot there (--no-pivot)"
	case ok && root.Propagation() == "shared":
		return "/ is a shared mount, and pivot_root refuses shared mounts; make it private first: mount --make-rprivate /"
	}
	nr, ok := at(infos, filepath.Clean(newRoot))
	if !ok {
		return fmt.Sprintf("%s is not a mount point; bind it onto itself first: mount --rbind %s %s", newRoot, newRoot, newRoot)
	}
	if nr.Propagation() == "shared" {
		return fmt.Sprintf("%s is a shared mount; make it private: mount --make-rprivate %s", newRoot, newRoot)
	}
	if p, ok := byID(infos, nr.Parent); ok && p.Propagation() == "shared" {
		return fmt.Sprintf("the mount that holds %s (%s) is shared; make it private: mount --make-rprivate /", newRoot, p.Mountpoint)
	}
	if ok && root.ID == nr.ID {
		return "the new root is the current root"
	}
	return ""
}

// at is the mount on top at path: the last one listed there.
func at(infos []mount.Info, path string) (mount.Info, bool) {
	var found mount.Info
	ok := false
	for _, m := range infos {
		if m.Mountpoint == path {
			found, ok = m, true
		}
	}
	return found, ok
}

func byID(infos []mount.Info, id int) (mount.Info, bool) {
	for _, m := range infos {
		if m.ID == id {
			return m, true
		}
	}
	return mount.Info{}, false
}

// Explain is the message for a pivot_root error in plain words, for hints.
func Explain(err error) string {
	if e, ok := err.(*Error); ok && e.Cause != "" {
		return e.Cause
	}
	return strings.TrimSpace(fmt.Sprint(err))
}
