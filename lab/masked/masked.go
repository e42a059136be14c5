// Package masked hides and freezes the parts of /proc and /sys that show
// or change the host, as runc does with its masked and read-only paths: a
// proc mounted in a container is the kernel's, and some of its files are
// about the whole machine.
package masked

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Masked are hidden: /dev/null over a file, an empty read-only tmpfs over
// a directory (runc's maskedPaths).
var Masked = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}

// ReadOnly are bound onto themselves read-only (runc's readonlyPaths).
var ReadOnly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// Apply masks and freezes those paths below root, in the caller's own
// mount namespace, before it enters root. A path the kernel lacks is
// skipped.
func Apply(root string) error {
	for _, p := range Masked {
		if err := mask(filepath.Join(root, p)); err != nil {
			return err
		}
	}
	for _, p := range ReadOnly {
		if err := readOnly(filepath.Join(root, p)); err != nil {
			return err
		}
	}
	return nil
}

// mask: mount --bind /dev/null FILE, or mount -t tmpfs -o ro tmpfs DIR.
func mask(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", path, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	} else {
		err = unix.Mount("/dev/null", path, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	return nil
}

// readOnly: mount --bind PATH PATH && mount -o remount,bind,ro PATH.
func readOnly(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s read-only: %w", path, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(path, path, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", path, err)
	}
	return nil
}
