package state

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Progress is when each step last ran to its end, by the step's command
// name; a step that leaves nothing behind has no other trace of it.
type Progress map[string]time.Time

// ProgressFile is where the progress is kept.
func (w Workdir) ProgressFile() string { return filepath.Join(w.Root, "progress.json") }

// maxProgress bounds what is read: the file is small, whatever is there.
const maxProgress = 64 << 10

// ReadProgress reads the progress; none recorded yet is an empty one. The
// file is only ever displayed, so a damaged one is reported, not trusted.
func (w Workdir) ReadProgress() (Progress, error) {
	p := Progress{}
	f, err := os.OpenFile(w.ProgressFile(), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read progress %s: %w", w.ProgressFile(), err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return p, fmt.Errorf("read progress %s: not a regular file", w.ProgressFile())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxProgress))
	if err != nil {
		return p, fmt.Errorf("read progress %s: %w", w.ProgressFile(), err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Progress{}, fmt.Errorf("read progress %s: %w", w.ProgressFile(), err)
	}
	return p, nil
}

// RecordProgress notes that step name ran to its end at t. It writes a new
// file and renames it into place, so a reader never sees half of one and a
// symlink planted at the name is replaced, never followed.
func (w Workdir) RecordProgress(name string, t time.Time) error {
	p, err := w.ReadProgress()
	if err != nil {
		p = Progress{}
	}
	p[name] = t.UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(w.Root, ".progress-*.tmp")
	if err != nil {
		return fmt.Errorf("record progress in %s: %w", w.Root, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("record progress %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), w.ProgressFile())
}
