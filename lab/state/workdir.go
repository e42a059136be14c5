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
	return Workdir{Root: abs}, nil
}

// Busybox is the verified BusyBox binary that the download leaves.
func (w Workdir) Busybox() string { return filepath.Join(w.Root, "busybox") }

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
