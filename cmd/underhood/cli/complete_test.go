package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/state"
)

func complete(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd(&globals{})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"__complete"}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	return out.String()
}

func TestCompletion(t *testing.T) {
	if got := complete(t, "check", ""); !strings.Contains(got, "3\tChange the root directory\n") || !strings.HasPrefix(got, "1\t") {
		t.Errorf("check's step numbers:\n%s", got)
	}
	if got := complete(t, "run", "--isolation", ""); !strings.HasPrefix(got, "article\t") || !strings.Contains(got, "\nfull\t") {
		t.Errorf("run --isolation's levels:\n%s", got)
	}
	if got := complete(t, "step", "7", ""); strings.Contains(got, "\t") {
		t.Errorf("step takes one number, offered more:\n%s", got)
	}

	w, err := state.Resolve(filepath.Join(t.TempDir(), "lab"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Ensure(); err != nil {
		t.Fatal(err)
	}
	j, err := w.CreateRun("box1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Record(state.Entry{Op: "run", Name: "box1", Kind: "run", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"inspect", "cleanup"} {
		if got := complete(t, "--workdir", w.Root, cmd, "b"); !strings.Contains(got, "box1\trun\n") {
			t.Errorf("%s's run names in %s:\n%s", cmd, w.Root, got)
		}
	}
	if got := complete(t, "--workdir", ""); !strings.Contains(got, ":16") { // ShellCompDirectiveFilterDirs
		t.Errorf("--workdir completes directories:\n%s", got)
	}
}
