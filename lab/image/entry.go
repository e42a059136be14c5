package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Whiteout names, from the OCI image spec's layer format.
const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
)

var special = map[byte]string{tar.TypeChar: "character device node", tar.TypeBlock: "block device node", tar.TypeFifo: "fifo"}

// cleanName turns a tar entry name into a path relative to the root, or
// refuses it: an absolute name or one with a ".." component is malformed
// (a correct layer never needs either), so it is an error, not rewritten.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path: layer entries are relative to the image root")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("path with '..' would leave the image root")
		}
	}
	return path.Clean(name), nil
}

// applyEntry writes one tar entry into root. os.Root reports a path that a
// symlink leads out of root as "path escapes from parent"; that gets said
// in the user's words.
func applyEntry(root *os.Root, r io.Reader, hdr *tar.Header) error {
	err := applyEntryIn(root, r, hdr)
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("a symlink on the way leads out of the unpack directory, refused: %w", err)
	}
	return err
}

func applyEntryIn(root *os.Root, r io.Reader, hdr *tar.Header) error {
	name, err := cleanName(hdr.Name)
	if err != nil || name == "." {
		return err
	}
	dir, base := path.Split(name)
	if dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch {
	case base == whOpaque:
		return clearDir(root, path.Clean(dir))
	case strings.HasPrefix(base, whPrefix):
		hidden := base[len(whPrefix):]
		if hidden == "" || hidden == "." || hidden == ".." {
			// ".wh." would remove its whole directory, ".wh..." its parent.
			return fmt.Errorf("whiteout %q names no file in its directory, refused", base)
		}
		return root.RemoveAll(path.Join(dir, hidden))
	}
	return create(root, r, hdr, name)
}

func create(root *os.Root, r io.Reader, hdr *tar.Header, name string) error {
	exists, err := replace(root, name, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			err = root.Mkdir(name, 0o700)
		}
	case tar.TypeReg:
		err = writeFile(root, r, name)
	case tar.TypeSymlink:
		// Any target may be stored: os.Root never follows it out of dest.
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		var target string
		if target, err = cleanName(hdr.Linkname); err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		return root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("%s: refused, an image carries no device nodes or fifos (the runtime provides /dev)", special[hdr.Typeflag])
	default:
		return fmt.Errorf("tar entry type %q: only directories, files, symlinks and hard links are unpacked", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	return setOwnerMode(root, name, hdr)
}

func writeFile(root *os.Root, r io.Reader, name string) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// setOwnerMode applies the entry's permissions, setuid and setgid stripped:
// an unpacked image is a directory on the host, and a setuid binary there
// would be a way up for any local user who can reach it. Owners are kept
// when we are root (as umoci does); otherwise files stay ours.
func setOwnerMode(root *os.Root, name string, hdr *tar.Header) error {
	if os.Geteuid() == 0 {
		if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	mode := os.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return root.Chmod(name, mode)
}

// clearDir removes what lower layers left in dir (an opaque whiteout).
func clearDir(root *os.Root, dir string) error {
	f, err := root.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := root.RemoveAll(path.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}
