package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// removeTree deletes dir and everything below it, never following a
// symlink (links are removed, not their targets) and never crossing into
// another filesystem: a mount left below dir is an error, not a deletion
// of whatever is mounted there.
func removeTree(dir string) error {
	if filepath.Clean(dir) == "/" || !filepath.IsAbs(dir) {
		return fmt.Errorf("remove %q: refusing a relative path or /", dir)
	}
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if !st.IsDir() {
		return os.Remove(dir)
	}
	dev := st.Sys().(*syscall.Stat_t).Dev
	var dirs []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			info, err := d.Info()
			if errors.Is(err, os.ErrNotExist) {
				return fs.SkipDir // removed meanwhile (the run's own underhood)
			}
			if err != nil {
				return err
			}
			if info.Sys().(*syscall.Stat_t).Dev != dev {
				return fmt.Errorf("remove %s: %s is another filesystem (still mounted?); unmount it first", dir, p)
			}
			dirs = append(dirs, p)
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", dirs[i], err)
		}
	}
	return nil
}
