package steps

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every "read the code" reference of every step names a file and a
// function that exist, and every step's docs page exists and names them.
func TestStepsNameCodeThatExists(t *testing.T) {
	for _, s := range All() {
		if len(s.Code) == 0 {
			t.Errorf("%s: no code to read", s.Name)
		}
		for _, ref := range s.Code {
			file, fn, _ := strings.Cut(ref, " ")
			path := filepath.Join("..", file)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("%s: read the code %q: %v", s.Name, ref, err)
				continue
			}
			if fn != "" && !declares(f, fn) {
				t.Errorf("%s: read the code %q: %s declares no %s", s.Name, ref, file, fn)
			}
		}
		if _, err := os.Stat(filepath.Join("..", s.Doc())); err != nil {
			t.Errorf("%s: docs page: %v", s.Name, err)
		}
	}
}

func declares(f *ast.File, name string) bool {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name {
			return true
		}
	}
	return false
}

// The registry numbers the steps from their files' order, and derives
// every "next".
func TestRegistryOrder(t *testing.T) {
	want := []string{"download", "rootfs", "chroot", "mount-proc", "unshare", "cgroup", "run"}
	all := All()
	if len(all) < len(want) {
		t.Fatalf("%d steps registered, want at least %d", len(all), len(want))
	}
	for i, name := range want {
		if all[i].Name != name || all[i].N != i+1 {
			t.Errorf("step %d is %s (N=%d), want %s", i+1, all[i].Name, all[i].N, name)
		}
	}
	if got := of("download").NextHint(); got != "sudo underhood rootfs (step 2)" {
		t.Errorf("download's next: %q", got)
	}
	last := all[len(all)-1]
	if last.Next() != nil || last.NextHint() != AfterLast {
		t.Errorf("the last step %s says next %q", last.Name, last.NextHint())
	}
	for _, s := range all {
		if s.Tour.Demo == nil || s.Check.Run == nil || s.Explain.What == "" || s.Page == "" {
			t.Errorf("%s lacks a tour stop, a check, an explanation or a page", s.Name)
		}
	}
}

// Each container step of the article (steps 3-7) says what it does not
// isolate, in its explanation and on its page; every step it names exists;
// and the full run's page says plainly that it is escapable and never that
// nothing else is needed (issue 10).
func TestStepsSayWhatIsNotIsolated(t *testing.T) {
	for _, name := range []string{"chroot", "mount-proc", "unshare", "cgroup", "run"} {
		s := of(name)
		if len(s.Explain.NotIsolated) == 0 {
			t.Errorf("%s: its explanation has no NotIsolated list", name)
		}
		for _, l := range s.Explain.NotIsolated {
			if strings.Contains(StepRefs(l), "{") {
				t.Errorf("%s: %q names a step that does not exist", name, l)
			}
		}
		page, err := os.ReadFile(filepath.Join("..", s.Doc()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), "\n## What this does not isolate\n") {
			t.Errorf("%s: %s has no section 'What this does not isolate'", name, s.Doc())
		}
		if strings.Contains(strings.ToLower(string(page)), "nothing else is needed") {
			t.Errorf("%s: %s claims nothing else is needed", name, s.Doc())
		}
	}
	page, _ := os.ReadFile(filepath.Join("..", of("run").Doc()))
	for _, want := range []string{"escapable", of("pivot-root").Doc(), of("limits").Doc(), of("privileges").Doc()} {
		if !strings.Contains(string(page), strings.TrimPrefix(want, "docs/")) {
			t.Errorf("%s does not say %q", of("run").Doc(), want)
		}
	}
}
