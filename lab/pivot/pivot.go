// Package pivot swaps a mount namespace's root for a new one, as runc does
// (libcontainer/rootfs_linux.go, pivotRoot): unlike chroot, which changes
// one process's idea of /, pivot_root(2) changes the namespace's root
// mount, and once the old root is unmounted there is nothing left to climb
// back to.
package pivot

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// PutOld is where the old root is put, below the new one, until it is
// unmounted.
const PutOld = ".oldroot"

// Root makes newRoot the root of the calling process's mount namespace,
// which must be its own (CLONE_NEWNS) with / made private. Its steps are
// those of the shell:
//
//	mount --rbind NEW NEW
//	mkdir NEW/.oldroot && cd NEW && pivot_root . .oldroot
//	umount -l /.oldroot && rmdir /.oldroot
func Root(newRoot string) error {
	// pivot_root wants the new root to be a mount point: bind it onto itself.
	if err := unix.Mount(newRoot, newRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &Error{Op: "mount --rbind", Path: newRoot, Err: err}
	}
	old := filepath.Join(newRoot, PutOld)
	if err := os.Mkdir(old, 0o700); err != nil && !os.IsExist(err) {
		return &Error{Op: "mkdir", Path: old, Err: err}
	}
	if err := unix.PivotRoot(newRoot, old); err != nil {
		_ = os.Remove(old)
		return &Error{Op: "pivot_root", Path: newRoot, Err: err, Cause: Diagnose("/proc/self/mountinfo", newRoot)}
	}
	if err := unix.Chdir("/"); err != nil {
		return &Error{Op: "chdir", Path: "/", Err: err}
	}
	// The old root is still mounted at /.oldroot: detach it, so that no
	// path and no walk up from a working directory leads back to the host.
	if err := unix.Unmount("/"+PutOld, unix.MNT_DETACH); err != nil {
		return &Error{Op: "umount -l", Path: "/" + PutOld, Err: err}
	}
	if err := os.Remove("/" + PutOld); err != nil {
		return &Error{Op: "rmdir", Path: "/" + PutOld, Err: err}
	}
	return nil
}

// MoveRoot is what runc does where pivot_root cannot work (a root that is
// the initial ramfs: --no-pivot): move the new root's mount onto / and
// chroot into it. It is weaker: the old root stays underneath.
func MoveRoot(newRoot string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return &Error{Op: "chdir", Path: newRoot, Err: err}
	}
	if err := unix.Mount(newRoot, "/", "", unix.MS_MOVE, ""); err != nil {
		return &Error{Op: "mount --move", Path: newRoot, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return &Error{Op: "chroot", Path: newRoot, Err: err}
	}
	return unix.Chdir("/")
}

// Error is a failed step of Root, with the reason pivot_root refused
// when it did.
type Error struct {
	Op, Path string
	Err      error
	Cause    string // for EINVAL: which of pivot_root's conditions failed
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err)
	if e.Cause != "" {
		s += ": " + e.Cause
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
