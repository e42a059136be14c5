package guide

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/underhood/underhood/lab/ui"
)

// Run says everything that is stale and then fails with exit code 1; with
// nothing stale it says nothing.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	if err := os.WriteFile(page, []byte("```\n$ underhood bogus\n```\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(dir, "cli")
	gen := func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "underhood.md"), []byte("root\n"), 0o644)
	}
	refuse := func([]string, bool) error { return os.ErrInvalid }

	var out bytes.Buffer
	err := Run(ui.Buffers(nil, &out, &out), Options{Lint: []string{page}, Command: refuse, CLI: cli, Reference: gen, Check: true})
	if ui.ExitCode(err) != 1 {
		t.Errorf("exit code %d (%v), want 1", ui.ExitCode(err), err)
	}
	want := page + ":2: underhood bogus: invalid argument\n" + filepath.Join(cli, "underhood.md") + ": missing\n"
	if out.String() != want {
		t.Errorf("said\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	accept := func([]string, bool) error { return nil }
	if err := Run(ui.Buffers(nil, &out, &out), Options{Lint: []string{page}, Command: accept, CLI: cli, Reference: gen}); err != nil {
		t.Fatal(err)
	}
	if err := Run(ui.Buffers(nil, &out, &out), Options{Lint: []string{page}, Command: accept, CLI: cli, Reference: gen, Check: true}); err != nil || out.Len() > 0 {
		t.Errorf("after regenerating: %v, said %q", err, out.String())
	}
}
