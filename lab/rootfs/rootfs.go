// Package rootfs prepares the directory tree that a container sees as "/":
// a few empty directories and a static BusyBox in bin/.
//
// The tree is shared by every run, and a payload running as root inside it
// can replace anything in it, a file with a symlink to a host path included.
// So the host side never follows a link here: the path to the tree may hold
// none, the tree's own directories must be real ones, and every write goes
// through an os.Root, which refuses to leave the tree.
package rootfs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/busybox"
)

// layout is the article's tree: bin for BusyBox, the rest mount points and
// places that programs expect to find.
var layout = []string{"bin", "dev", "etc", "proc", "sys"}

// Layout returns the top-level directories of a prepared root filesystem.
func Layout() []string { return slices.Clone(layout) }

// Busybox is where the BusyBox of the root filesystem at dir lives.
func Busybox(dir string) string { return filepath.Join(dir, "bin", "busybox") }

// NotReadyError is a root filesystem that a container cannot start from.
type NotReadyError struct {
	Dir     string
	Problem string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("root filesystem %s is not ready: %s", e.Dir, e.Problem)
}

// Safe refuses dir as a root filesystem if it is, or is the same directory
// as, the host's "/", or if any component of its path is a symbolic link.
// Components that do not exist yet are fine: Prepare creates them.
func Safe(dir string) error {
	if dir == "" {
		return errors.New("root filesystem: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("root filesystem %s: %w", dir, err)
	}
	if abs == "/" {
		return fmt.Errorf("root filesystem %s: refusing the host's own /", dir)
	}
	p := "/"
	for _, c := range strings.Split(abs[1:], "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("root filesystem %s: %w", dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			msg := fmt.Sprintf("root filesystem %s: %s is a symbolic link; give a path without symlinks", dir, p)
			if real, err := filepath.EvalSymlinks(p); err == nil {
				msg += fmt.Sprintf(" (it points to %s)", real)
			}
			return errors.New(msg)
		}
		if !fi.IsDir() {
			return fmt.Errorf("root filesystem %s: %s is not a directory", dir, p)
		}
	}
	// A bind mount of / elsewhere is / all the same.
	if fi, err := os.Stat(abs); err == nil {
		if root, err := os.Stat("/"); err == nil && os.SameFile(fi, root) {
			return fmt.Errorf("root filesystem %s: it is the host's own / under another name", dir)
		}
	}
	return nil
}

// Prepare makes dir a root filesystem: the Layout directories (0755) and a
// copy of the static BusyBox at busyboxPath as bin/busybox (0755). With
// links, every applet gets a symlink bin/<applet> -> busybox, so that "ls"
// works as well as "busybox ls"; existing names are left alone. Running it
// again changes nothing that is already right.
func Prepare(dir, busyboxPath string, links bool) error {
	if err := Safe(dir); err != nil {
		return err
	}
	if err := busybox.CheckStatic(busyboxPath); err != nil {
		return fmt.Errorf("root filesystem %s: %w", dir, err)
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create root filesystem %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // not whatever the umask left
			return fmt.Errorf("create root filesystem %s: %w", dir, err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open root filesystem %s: %w", dir, err)
	}
	defer root.Close()
	for _, d := range layout {
		if err := mkdir(root, d); err != nil {
			return err
		}
	}
	bin, err := root.OpenRoot("bin")
	if err != nil {
		return fmt.Errorf("open %s: %w", filepath.Join(dir, "bin"), err)
	}
	defer bin.Close()
	if err := copyBusybox(bin, busyboxPath); err != nil {
		return err
	}
	if links {
		return linkApplets(bin, busyboxPath)
	}
	return nil
}

// mkdir creates root/name (0755) unless it is a directory already. A
// symlink in its place is refused, not followed.
func mkdir(root *os.Root, name string) error {
	path := filepath.Join(root.Name(), name)
	fi, err := root.Lstat(name)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("root filesystem %s: %s is a symbolic link, not a directory; remove it and run again", root.Name(), path)
	case err == nil && !fi.IsDir():
		return fmt.Errorf("root filesystem %s: %s is not a directory; remove it and run again", root.Name(), path)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("root filesystem %s: %w", root.Name(), err)
	}
	if err := root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	d, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Chmod(0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// copyBusybox puts a copy of src at bin/busybox, unless one with the same
// bytes and mode is there already. The copy is a reflink (FICLONE) where the
// filesystem can share blocks, else a plain copy; never a hard link, which a
// payload could use to overwrite the host's binary. It is written beside
// bin/busybox and renamed over it, so a symlink planted there is replaced,
// not written through.
func copyBusybox(bin *os.Root, src string) (err error) {
	dest := filepath.Join(bin.Name(), "busybox")
	if same, err := identical(bin, "busybox", src); err != nil || same {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy BusyBox: %w", err)
	}
	defer in.Close()
	tmp := ".busybox." + rand.Text()[:10] + ".tmp"
	out, err := bin.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dest, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			bin.Remove(tmp)
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		// Not a filesystem that shares blocks (ext4, tmpfs, …), or another
		// filesystem than src's: copy the bytes.
		if _, err := io.Copy(out, in); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dest, err)
		}
	}
	if err := out.Chmod(0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", dest, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dest, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dest, err)
	}
	if err := bin.Rename(tmp, "busybox"); err != nil {
		return fmt.Errorf("rename %s to %s: %w", filepath.Join(bin.Name(), tmp), dest, err)
	}
	return nil
}

// identical reports whether bin/name is a regular 0755 file with the same
// bytes as src.
func identical(bin *os.Root, name, src string) (bool, error) {
	fi, err := bin.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("root filesystem: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		return false, nil
	}
	sfi, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("copy BusyBox: %w", err)
	}
	if sfi.Size() != fi.Size() {
		return false, nil
	}
	a, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("copy BusyBox: %w", err)
	}
	b, err := bin.ReadFile(name)
	if err != nil {
		return false, fmt.Errorf("root filesystem: %w", err)
	}
	return bytes.Equal(a, b), nil
}

// linkApplets adds bin/<applet> -> busybox for each applet of src, leaving
// alone any name that exists already.
func linkApplets(bin *os.Root, src string) error {
	names, err := busybox.Applets(src)
	if err != nil {
		return fmt.Errorf("list BusyBox applets for %s: %w", bin.Name(), err)
	}
	for _, n := range names {
		if _, err := bin.Lstat(n); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("root filesystem: %w", err)
		}
		if err := bin.Symlink("busybox", n); err != nil {
			return fmt.Errorf("symlink %s -> busybox: %w", filepath.Join(bin.Name(), n), err)
		}
	}
	return nil
}

// Check tells whether a container can start from the root filesystem at
// dir: a safe path, the Layout directories, and an executable bin/busybox.
func Check(dir string) error {
	if err := Safe(dir); err != nil {
		return err
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return &NotReadyError{Dir: dir, Problem: "the directory is missing"}
	}
	for _, d := range layout {
		fi, err := os.Lstat(filepath.Join(dir, d))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &NotReadyError{Dir: dir, Problem: d + "/ is missing"}
		case err != nil:
			return fmt.Errorf("root filesystem %s: %w", dir, err)
		case !fi.IsDir():
			return &NotReadyError{Dir: dir, Problem: d + " is not a directory (a symlink or a file is there)"}
		}
	}
	fi, err := os.Lstat(Busybox(dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &NotReadyError{Dir: dir, Problem: "bin/busybox is missing"}
	case err != nil:
		return fmt.Errorf("root filesystem %s: %w", dir, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return &NotReadyError{Dir: dir, Problem: "bin/busybox is not an executable file"}
	}
	return nil
}
