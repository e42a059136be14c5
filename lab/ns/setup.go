package ns

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/masked"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/pivot"
	"github.com/underhood/underhood/lab/seccomp"
)

// setup runs in the child, in its new namespaces, before the exec.
func setup(f Flags, root, hostname string) error {
	if f&Private != 0 {
		// Go makes / private only when CLONE_NEWNS is in Unshareflags; we
		// clone instead, so do it here, before any mount, so that nothing
		// we mount propagates back to the host.
		if err := mount.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return err
		}
	}
	if f&MountProc != 0 {
		if err := mount.Mount("proc", filepath.Join(root, "proc"), "proc",
			unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
	}
	if f&BindDev != 0 {
		for _, d := range Devices {
			if err := mount.Mount("/dev/"+d, filepath.Join(root, "dev", d), "", unix.MS_BIND, ""); err != nil {
				return err
			}
		}
	}
	if f&Hostname != 0 {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if f&MaskPaths != 0 {
		if err := masked.Apply(root); err != nil {
			return err
		}
	}
	if f&PivotRoot != 0 {
		if err := pivot.Root(root); err != nil {
			return err
		}
		root = "/"
	} else if f&Chroot != 0 {
		if err := unix.Chroot(root); err != nil {
			return fmt.Errorf("chroot %s: %w", root, err)
		}
		root = "/"
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	return nil
}

// dropPrivileges is the last thing before the exec: keep runc's small set
// of capabilities, forbid gaining any back (no_new_privs), then load the
// system call filter, which needs no_new_privs.
func dropPrivileges() error {
	if err := caps.Drop(caps.RuncDefault); err != nil {
		return err
	}
	if err := caps.NoNewPrivs(); err != nil {
		return err
	}
	return seccomp.Load()
}
