package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/state"
)

// removeTree deletes dir and everything below it, never following a
// symlink (links are removed, not their targets) and never crossing into
// another filesystem: a mount left below dir is an error, not a deletion
// of whatever is mounted there. A file or directory that a payload made
// immutable or append-only (FS_IOC_SETFLAGS, as chattr +i does) inside
// the run's own root has the flag cleared first; cleared lists them.
//
// The journal, if dir has one, goes last, just before dir itself: a
// cleanup racing the run's own removal sees the journal (and the lock the
// run holds on it) until the directory is empty.
func removeTree(dir string) (cleared []string, err error) {
	if filepath.Clean(dir) == "/" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("remove %q: refusing a relative path or /", dir)
	}
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, os.Remove(dir)
	}
	t := tree{dir: dir, dev: st.Sys().(*syscall.Stat_t).Dev, last: filepath.Join(dir, state.JournalFile)}
	if err := filepath.WalkDir(dir, t.visit); err != nil {
		return t.cleared, err
	}
	for i := len(t.dirs) - 1; i >= 0; i-- {
		if i == 0 {
			if err := t.remove(t.last); err != nil {
				return t.cleared, err
			}
		}
		if err := t.remove(t.dirs[i]); err != nil {
			return t.cleared, err
		}
	}
	return t.cleared, nil
}

// tree is one removeTree under way.
type tree struct {
	dir     string
	dev     uint64
	dirs    []string // to remove once empty, deepest last
	last    string   // the file removed just before dir: the journal
	cleared []string
}

func (t *tree) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if !d.IsDir() {
		if p == t.last {
			return nil
		}
		return t.remove(p)
	}
	info, err := d.Info()
	if errors.Is(err, os.ErrNotExist) {
		return fs.SkipDir // removed meanwhile (the run's own underhood)
	}
	if err != nil {
		return err
	}
	if info.Sys().(*syscall.Stat_t).Dev != t.dev {
		return fmt.Errorf("remove %s: %s is another filesystem (still mounted?); unmount it first", t.dir, p)
	}
	t.dirs = append(t.dirs, p)
	return nil
}

// remove removes p; refused with EPERM, it clears the immutable and
// append-only flags of p and of its directory (either one stops an
// unlink), and tries once more.
func (t *tree) remove(p string) error {
	err := os.Remove(p)
	if errors.Is(err, fs.ErrPermission) {
		for _, q := range []string{p, filepath.Dir(p)} {
			if !within(t.dir, q) {
				continue // only inside the run's directory
			}
			if ok, cerr := clearFlags(q, t.dev); cerr != nil {
				return fmt.Errorf("remove %s: %w", p, cerr)
			} else if ok {
				t.cleared = append(t.cleared, q)
			}
		}
		err = os.Remove(p)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	removed(p)
	return nil
}

// removed is told of each path removeTree removes, for its tests.
var removed = func(string) {}

// The inode flags of FS_IOC_GETFLAGS/FS_IOC_SETFLAGS (linux/fs.h) that
// forbid removing a file: immutable (chattr +i) and append-only (+a).
const (
	fsImmutable = 0x00000010 // FS_IMMUTABLE_FL
	fsAppend    = 0x00000020 // FS_APPEND_FL
)

// clearFlags clears the immutable and append-only flags of the regular
// file or directory p, which must be on the run's filesystem dev. It
// opens p without following a symlink, without blocking, and never opens
// a device or a FIFO. ok says it had a flag to clear.
func clearFlags(p string, dev uint64) (ok bool, err error) {
	if p == "/" {
		return false, nil
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() && !fi.IsDir() {
		return false, nil
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != dev ||
		st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, nil
	}
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&(fsImmutable|fsAppend) == 0 {
		return false, nil // no flags on this filesystem, or none set
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags&^(fsImmutable|fsAppend))); err != nil {
		return false, fmt.Errorf("clear the immutable flag of %s: %w", p, err)
	}
	return true, nil
}
