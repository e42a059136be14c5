// Package state knows where underhood keeps things on disk: the work
// directory, the BusyBox cache, the shared root filesystem and the per-run
// directories with their journals.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultRoot is the work directory when neither --workdir nor
// $UNDERHOOD_HOME says otherwise.
const DefaultRoot = "/var/lib/underhood"

// Workdir is underhood's work directory. Everything underhood creates on disk
// lives below Root.
type Workdir struct{ Root string }

// Resolve picks the work directory: the flag, then $UNDERHOOD_HOME, then the
// default. The result is absolute and cleaned.
func Resolve(flag string) (Workdir, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv("UNDERHOOD_HOME")
	}
	if dir == "" {
		dir = DefaultRoot
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Workdir{}, fmt.Errorf("work directory %q: %w", dir, err)
	}
	if abs == "/" {
		return Workdir{}, fmt.Errorf("work directory %q: refusing the filesystem root; give a directory of its own, e.g. --workdir %s", dir, DefaultRoot)
	}
	if err := noSymlinks(abs); err != nil {
		return Workdir{}, fmt.Errorf("work directory %s: %w", dir, err)
	}
	return Workdir{Root: abs}, nil
}

// noSymlinks refuses a path with a symbolic link in it, or one that is
// not a directory where it exists. A link is refused rather than resolved:
// the lab runs as root, and a link that someone else may point elsewhere
// between two commands (one in /tmp, say) would take underhood's creating
// and deleting with it; and its cleanup, which never follows a link, could
// not undo a run made through one.
func noSymlinks(abs string) error {
	p := "/"
	for _, c := range strings.Split(abs[1:], "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // made later, by Ensure
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			msg := p + " is a symbolic link: give the real path"
			if real, err := filepath.EvalSymlinks(p); err == nil {
				rest, _ := filepath.Rel(p, abs)
				msg += ", --workdir " + filepath.Join(real, rest)
			}
			return errors.New(msg)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
	}
	return nil
}

// Busybox is the verified BusyBox binary that the download leaves.
func (w Workdir) Busybox() string { return filepath.Join(w.Root, "busybox") }

// Verified is a directory of root's alone (0700) that holds the private
// copy of the verified BusyBox that steps run on the host, outside any
// container: no payload's root filesystem reaches it.
func (w Workdir) Verified() string { return filepath.Join(w.Root, "verified") }

// Cache holds partial downloads.
func (w Workdir) Cache() string { return filepath.Join(w.Root, "cache") }

// Rootfs is the shared root filesystem that the rootfs preparation makes.
func (w Workdir) Rootfs() string { return filepath.Join(w.Root, "rootfs") }

// Image is the OCI image layout that packing the root filesystem makes.
func (w Workdir) Image() string { return filepath.Join(w.Root, "image") }

// Runs holds one directory per container run.
func (w Workdir) Runs() string { return filepath.Join(w.Root, "runs") }

// Run is the directory of the run called name.
func (w Workdir) Run(name string) string { return filepath.Join(w.Runs(), name) }

// Ensure creates the work directory (0755) if it is missing.
func (w Workdir) Ensure() error {
	if err := os.MkdirAll(w.Root, 0o755); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("create work directory %s: %w: run underhood with sudo, or give a --workdir you may write to", w.Root, err)
		}
		return fmt.Errorf("create work directory %s: %w", w.Root, err)
	}
	return nil
}
