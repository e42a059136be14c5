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
