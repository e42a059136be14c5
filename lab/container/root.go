package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/overlay"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/state"
)

// mountOverlay mounts lower (read-only), with an upper and a work directory
// in the run's directory, on root. The mount is recorded first, so that a
// cleanup after a kill -9 unmounts it. A refusal that copying gets around
// (overlayfs missing, a filesystem it cannot use) is no error: it goes to
// res.OverlayFallback, and the run makes a copy instead.
func mountOverlay(j *state.Journal, lower, root string, res *Result) error {
	l := overlay.Layer{Lower: lower, Upper: filepath.Join(j.Dir, "upper"),
		Work: filepath.Join(j.Dir, "work"), Target: root}
	if err := j.Record(state.Entry{Op: "mount", Path: root}); err != nil {
		return err
	}
	err := l.Mount()
	var oe *overlay.Error
	switch {
	case err == nil:
		res.Overlay = &l
		return nil
	case errors.As(err, &oe) && oe.Kind != overlay.Other:
		res.OverlayFallback = err
		return nil
	}
	return err
}

// furnish adds to a run's own root what the run needs in it: proc, dev and
// sys as real directories (mount points), the empty files the device bind
// mounts cover, and the CopyIn files. Through an os.Root, and replacing
// whatever else stands at those names: in an unpacked image, dev could be a
// symlink to the host's /etc, and the bind mounts would follow it.
func furnish(dir string, devices bool, extra []CopyIn) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open container root %s: %w", dir, err)
	}
	defer r.Close()
	for _, d := range []string{"proc", "dev", "sys"} {
		if err := realDir(r, d); err != nil {
			return fmt.Errorf("container root %s: %w", dir, err)
		}
	}
	if devices {
		for _, d := range ns.Devices {
			if err := emptyFile(r, path.Join("dev", d)); err != nil {
				return fmt.Errorf("create bind-mount target %s: %w", filepath.Join(dir, "dev", d), err)
			}
		}
	}
	for _, c := range extra {
		if err := realDir(r, path.Dir(c.Dest)); err != nil {
			return fmt.Errorf("container root %s: %w", dir, err)
		}
		if err := rootfs.CopyFile(dir, c.Dest, c.Src, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// realDir makes name a directory of root's own: one already there stays,
// anything else there (a symlink, a file) is replaced.
func realDir(r *os.Root, name string) error {
	fi, err := r.Lstat(name)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		if err := r.RemoveAll(name); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return r.Mkdir(name, 0o755)
}

// emptyFile makes name a regular file, replacing a symlink or anything
// else that is not one.
func emptyFile(r *os.Root, name string) error {
	fi, err := r.Lstat(name)
	switch {
	case err == nil && fi.Mode().IsRegular():
		return nil
	case err == nil:
		if err := r.RemoveAll(name); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	f, err := r.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
