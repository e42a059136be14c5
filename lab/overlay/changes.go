package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// What a Change is.
type What string

const (
	Written  What = "written" // a file, link or directory added or changed
	Deleted  What = "deleted" // a whiteout: char device 0/0 hides the lower name
	Opaque   What = "opaque"  // a directory that hides all of the lower one
	xattrOpq      = "trusted.overlay.opaque"
)

// Change is one entry of the upper directory, named from the root ("/etc/x").
type Change struct {
	Path string
	What What
}

// Changes lists what a run wrote, deleted or replaced, by walking upper in
// lexical order. Directories overlayfs only copied up to hold a change are
// listed as written too: from upper alone they look the same.
func Changes(upper string) ([]Change, error) {
	var out []Change
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("list overlay changes in %s: %w", upper, err)
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		c, err := change(p, d)
		if err != nil {
			return err
		}
		c.Path = "/" + rel
		out = append(out, c)
		return nil
	})
	return out, err
}

func change(p string, d fs.DirEntry) (Change, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Change{}, fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		return Change{What: Deleted}, nil
	}
	if d.IsDir() {
		buf := make([]byte, 1)
		n, err := unix.Lgetxattr(p, xattrOpq, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return Change{What: Opaque}, nil
		}
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			return Change{}, fmt.Errorf("read %s of %s: %w", xattrOpq, p, err)
		}
	}
	return Change{What: Written}, nil
}
