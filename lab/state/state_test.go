package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("UNDERHOOD_HOME", "")
	if w, _ := Resolve(""); w.Root != DefaultRoot {
		t.Errorf("default %q", w.Root)
	}
	t.Setenv("UNDERHOOD_HOME", "/tmp/uh-home")
	if w, _ := Resolve(""); w.Root != "/tmp/uh-home" {
		t.Errorf("env %q", w.Root)
	}
	if w, _ := Resolve("/tmp/flag/../flag2"); w.Root != "/tmp/flag2" {
		t.Errorf("flag %q", w.Root)
	}
	if _, err := Resolve("/"); err == nil {
		t.Error("/ accepted as work directory")
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "box-1f2e", "web.1", "A_b"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "-x", ".hidden", strings.Repeat("x", 64), "sp ace"} {
		if err := ValidName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestJournalRoundTrip(t *testing.T) {
	w := Workdir{Root: t.TempDir()}
	j, err := w.CreateRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	code := 137
	for _, e := range []Entry{{Op: "run", Name: "r1", Kind: "run", Memory: 7340032},
		{Op: "cgroup", Path: "/sys/fs/cgroup/memory/underhood/r1"}, {Op: "pid", PID: 42, Start: 99}, {Op: "exit", Code: &code}} {
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	// A torn last line (crash mid-write) is skipped.
	f, _ := os.OpenFile(filepath.Join(w.Run("r1"), JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"mou`)
	f.Close()
	es, err := ReadJournal(w.Run("r1"))
	if err != nil {
		t.Fatal(err)
	}
	i := Summarize("r1", w.Run("r1"), es)
	if i.Kind != "run" || i.Memory != 7340032 || i.Payload.PID != 42 || i.Payload.Start != 99 || len(i.Cgroups) != 1 || i.Exit == nil || *i.Exit != 137 {
		t.Errorf("summary %+v", i)
	}
	if len(i.Dirs) != 1 || i.Dirs[0] != w.Run("r1") {
		t.Errorf("the run directory is not the journal's first record: %v", i.Dirs)
	}
	if _, err := w.CreateRun("r1"); !errors.Is(err, ErrRunExists) {
		t.Errorf("second run with the same name: %v", err)
	}
	names, _ := w.ListRuns()
	if len(names) != 1 || names[0] != "r1" {
		t.Errorf("ListRuns = %v", names)
	}
}

func TestCreateRunRefusesBadName(t *testing.T) {
	w := Workdir{Root: t.TempDir()}
	if _, err := w.CreateRun("../escape"); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := os.Stat(w.Runs()); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused name still created the runs directory")
	}
}

// A work directory through a symbolic link, or one that is a file, is
// refused, and the real path is offered (issue 10, item 5).
func TestResolveRefusesSymlinks(t *testing.T) {
	real := t.TempDir()
	top := t.TempDir()
	link := filepath.Join(top, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(top, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{link, "is a symbolic link: give the real path, --workdir " + real},
		{filepath.Join(link, "lab"), "--workdir " + filepath.Join(real, "lab")},
		{filepath.Join(file, "lab"), "is not a directory"},
	} {
		if _, err := Resolve(c.dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve(%s): %v, want %q", c.dir, err, c.want)
		}
	}
	if w, err := Resolve(filepath.Join(real, "lab")); err != nil || w.Root != filepath.Join(real, "lab") {
		t.Errorf("a real path: %v, %v", w, err)
	}
}
