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
	"strconv"
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

// MarkerFile marks a directory as underhood's work directory. It is written
// when underhood makes (or adopts) the directory; cleanup deletes nothing
// in a directory that is not underhood's.
const MarkerFile = ".underhood"

const markerText = "This directory is underhood's work directory: 'underhood cleanup' may remove the runs it recorded here.\n"

// labNames are the entries underhood itself makes in a work directory: a
// directory holding only these (or nothing) is one of underhood's, made
// before the marker existed, and is adopted.
var labNames = map[string]bool{"busybox": true, "rootfs": true, "runs": true, "cache": true,
	"progress.json": true, MarkerFile: true}

// NotOursError means the work directory is not underhood's: it has no
// marker and holds what underhood never makes.
type NotOursError struct {
	Root    string
	Foreign []string // a few of the entries underhood did not make
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("work directory %s is not underhood's: it has no %s marker and holds %s, which underhood does not make; give a new or empty directory",
		e.Root, MarkerFile, strings.Join(e.Foreign, ", "))
}

// Owned reports whether the work directory is underhood's: it has the
// marker, or holds nothing but what underhood makes (a work directory
// from before the marker). A missing directory is fs.ErrNotExist.
func (w Workdir) Owned() error {
	fi, err := os.Lstat(filepath.Join(w.Root, MarkerFile))
	if err == nil && fi.Mode().IsRegular() {
		return nil
	}
	ents, err := os.ReadDir(w.Root)
	if err != nil {
		return fmt.Errorf("work directory %s: %w", w.Root, err)
	}
	var foreign []string
	for _, e := range ents {
		n := e.Name()
		if labNames[n] || strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, ".part")) {
			continue
		}
		if len(foreign) == 3 {
			foreign = append(foreign, "…")
			break
		}
		foreign = append(foreign, strconv.Quote(n))
	}
	if len(foreign) > 0 {
		return &NotOursError{Root: w.Root, Foreign: foreign}
	}
	return nil
}

// Ensure creates the work directory (0755) if it is missing and marks it
// as underhood's. An existing directory is used only if it is underhood's
// (see Owned); one from before the marker gets it now.
func (w Workdir) Ensure() error {
	if err := os.MkdirAll(w.Root, 0o755); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("create work directory %s: %w: run underhood with sudo, or give a --workdir you may write to", w.Root, err)
		}
		return fmt.Errorf("create work directory %s: %w", w.Root, err)
	}
	if err := w.Owned(); err != nil {
		return err
	}
	return w.mark()
}

// mark writes the marker, unless it is there: a new file, never through
// a symlink planted at its name.
func (w Workdir) mark() error {
	p := filepath.Join(w.Root, MarkerFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode().IsRegular() {
			return nil
		}
		return fmt.Errorf("work directory %s: %s is not a regular file; remove it", w.Root, p)
	}
	if err != nil {
		return fmt.Errorf("mark work directory %s: %w", w.Root, err)
	}
	_, err = f.WriteString(markerText)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
