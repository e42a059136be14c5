package guide

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

// Reference compares the generated pages with the directory's, and without
// check makes the directory what was generated, leaving other files alone.
func TestReference(t *testing.T) {
	gen := func(dir string) error {
		writeFiles(t, dir, map[string]string{"underhood.md": "root\n", "underhood_ps.md": "ps\n", "underhood_run.md": "run\n"})
		return nil
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"underhood.md": "root\n", "underhood_ps.md": "old ps\n", "underhood_gone.md": "gone\n", "README.md": "not generated\n"})
	stale, err := Reference(dir, true, gen)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(stale)
	want := []string{
		filepath.Join(dir, "underhood_gone.md") + ": no such command any more",
		filepath.Join(dir, "underhood_ps.md") + ": differs from the commands' help",
		filepath.Join(dir, "underhood_run.md") + ": missing",
	}
	if !reflect.DeepEqual(stale, want) {
		t.Errorf("stale:\n  %s\nwant\n  %s", strings.Join(stale, "\n  "), strings.Join(want, "\n  "))
	}
	if got := readFiles(t, dir); got["underhood_ps.md"] != "old ps\n" || len(got) != 4 {
		t.Errorf("check changed the directory: %q", got)
	}

	if stale, err := Reference(dir, false, gen); err != nil || len(stale) != 0 {
		t.Fatalf("Reference without check: %q, %v", stale, err)
	}
	wantFiles := map[string]string{"underhood.md": "root\n", "underhood_ps.md": "ps\n", "underhood_run.md": "run\n", "README.md": "not generated\n"}
	if got := readFiles(t, dir); !reflect.DeepEqual(got, wantFiles) {
		t.Errorf("after regenerating: %q, want %q", got, wantFiles)
	}
	if stale, err := Reference(dir, true, gen); err != nil || len(stale) != 0 {
		t.Errorf("still stale after regenerating: %q, %v", stale, err)
	}

	fresh := filepath.Join(t.TempDir(), "cli")
	if _, err := Reference(fresh, false, gen); err != nil {
		t.Fatal(err)
	}
	if got := readFiles(t, fresh); len(got) != 3 {
		t.Errorf("into a new directory: %q", got)
	}
}
