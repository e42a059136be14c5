package guide

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Reference regenerates the command reference in dir with gen, which
// writes one Markdown page per command into the directory it is given;
// with check it changes nothing and returns what differs.
func Reference(dir string, check bool, gen func(dir string) error) ([]string, error) {
	tmp, err := os.MkdirTemp("", "underhood-cli-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := gen(tmp); err != nil {
		return nil, err
	}
	stale, err := diffDirs(tmp, dir)
	if err != nil || check || len(stale) == 0 {
		return stale, err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "underhood*.md"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fresh, _ := filepath.Glob(filepath.Join(tmp, "*.md"))
	for _, f := range fresh {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// diffDirs compares the generated pages in want with those in have.
func diffDirs(want, have string) ([]string, error) {
	var stale []string
	w, _ := filepath.Glob(filepath.Join(want, "*.md"))
	h, _ := filepath.Glob(filepath.Join(have, "underhood*.md"))
	seen := map[string]bool{}
	for _, f := range w {
		name := filepath.Base(f)
		seen[name] = true
		a, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(have, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stale = append(stale, filepath.Join(have, name)+": missing")
		case err != nil:
			return nil, err
		case !bytes.Equal(a, b):
			stale = append(stale, filepath.Join(have, name)+": differs from the commands' help")
		}
	}
	for _, f := range h {
		if !seen[filepath.Base(f)] {
			stale = append(stale, f+": no such command any more")
		}
	}
	return stale, nil
}
