package ns

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/mount"
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
	if f&Chroot != 0 {
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
