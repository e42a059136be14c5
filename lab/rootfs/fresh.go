package rootfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Fresh makes a new root filesystem at dir, which must not exist yet: the
// Layout directories and a copy of BusyBox (a reflink where the filesystem
// shares blocks). It is the per-run variant of Prepare, on the path of
// every container start: the directory is new and underhood's own, so
// there is nothing to compare or guard against, and nothing is synced to
// disk, since a run's root does not outlive the run. The caller has
// checked that busyboxPath is a static BusyBox.
func Fresh(dir, busyboxPath string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("create root filesystem %s: %w", dir, err)
	}
	for _, d := range layout {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", p, err)
		}
	}
	return CopyFile(dir, "bin/busybox", busyboxPath, 0o755)
}

// CopyFile copies src to rel inside the fresh root dir (a reflink where
// the filesystem shares blocks), with mode perm; rel must not exist yet.
// A copy, never a bind mount or a hard link of the host's file: a root
// payload could write through those to the host.
func CopyFile(dir, rel, src string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	dest := filepath.Join(dir, rel)
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dest, err)
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		// io.Copy between files uses copy_file_range(2): in the kernel.
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("copy %s to %s: %w", src, dest, err)
		}
	}
	if err := out.Chmod(perm); err != nil { // not whatever the umask left
		out.Close()
		return fmt.Errorf("chmod %s: %w", dest, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dest, err)
	}
	return nil
}
