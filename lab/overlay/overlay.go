// Package overlay mounts an overlay filesystem: a read-only lower directory
// (the prepared root), a per-run upper directory that receives every write,
// and the work directory overlayfs needs on the upper's filesystem. It also
// reads back what a run changed, from the upper directory alone.
package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ProcFilesystems is read by Supported; a variable so tests can point it at
// a fixture.
var ProcFilesystems = "/proc/filesystems"

// Layer names the four directories of one overlay mount.
type Layer struct {
	Lower  string // read-only, shared by many runs
	Upper  string // this run's writes
	Work   string // overlayfs scratch, same filesystem as Upper
	Target string // where the merged view appears
}

// Options is the mount data string, as `mount -t overlay -o` takes it.
func (l Layer) Options() string {
	return "lowerdir=" + l.Lower + ",upperdir=" + l.Upper + ",workdir=" + l.Work
}

// Supported reports whether the kernel knows overlayfs, from ProcFilesystems.
// A module not loaded yet is not listed; Mount then loads it, so a caller
// may still try.
func Supported() error {
	data, err := os.ReadFile(ProcFilesystems)
	if err != nil {
		return fmt.Errorf("read %s: %w", ProcFilesystems, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "overlay" {
			return nil
		}
	}
	return &Error{Kind: Missing, Err: fmt.Errorf("%s does not list overlay", ProcFilesystems)}
}

// Mount creates Upper, Work and Target (0755) if missing and mounts the
// overlay on Target, in the caller's mount namespace. A refusal comes back
// as an *Error whose Kind says what to tell the user, and the directories
// Mount created are removed again.
func (l Layer) Mount() (err error) {
	var made []string
	defer func() {
		if err != nil {
			for _, d := range made {
				os.RemoveAll(d)
			}
		}
	}()
	for _, d := range []string{l.Upper, l.Work, l.Target} {
		if _, statErr := os.Lstat(d); statErr != nil {
			made = append(made, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create overlay directory %s: %w", d, err)
		}
	}
	if err := l.precheck(); err != nil {
		return err
	}
	if err := unix.Mount("overlay", l.Target, "overlay", 0, l.Options()); err != nil {
		return l.classify(fmt.Errorf("mount overlay on %s (%s): %w", l.Target, l.Options(), err))
	}
	return nil
}

// Unmount unmounts Target (lazily when busy, so a stuck payload cannot make
// the run leave a mount behind) and removes Work, Upper and Target: read
// Changes before. A Target that is not mounted (EINVAL) is only removed,
// so Unmount also cleans up after a run that failed half way.
func (l Layer) Unmount() error {
	if err := unix.Unmount(l.Target, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount overlay %s: %w", l.Target, err)
		}
		if err := unix.Unmount(l.Target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount overlay %s (detached): %w", l.Target, err)
		}
	}
	for _, d := range []string{l.Work, l.Upper} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove overlay directory %s: %w", d, err)
		}
	}
	if err := os.Remove(l.Target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove overlay mount point %s: %w", l.Target, err)
	}
	return nil
}
