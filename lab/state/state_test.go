package state

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
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

// Ensure marks a new work directory, adopts an old one that holds only
// what underhood makes, and refuses one with anything else in it.
func TestEnsureMarksAndAdopts(t *testing.T) {
	fresh := Workdir{Root: filepath.Join(t.TempDir(), "new")}
	if err := fresh.Ensure(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(fresh.Root, MarkerFile)); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("no marker in a new work directory: %v", err)
	}
	if err := fresh.Ensure(); err != nil {
		t.Errorf("second Ensure: %v", err)
	}
	old := Workdir{Root: t.TempDir()}
	os.MkdirAll(old.Runs(), 0o755)
	os.WriteFile(old.Busybox(), []byte("x"), 0o755)
	if err := old.Ensure(); err != nil {
		t.Errorf("an old lab layout was not adopted: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(old.Root, MarkerFile)); err != nil {
		t.Errorf("adopted without a marker: %v", err)
	}
	home := Workdir{Root: t.TempDir()}
	os.WriteFile(filepath.Join(home.Root, "thesis.tex"), nil, 0o644)
	var no *NotOursError
	if err := home.Ensure(); !errors.As(err, &no) || !strings.Contains(err.Error(), `"thesis.tex"`) {
		t.Errorf("a directory of the user's: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(home.Root, MarkerFile)); err == nil {
		t.Error("a directory not underhood's was marked")
	}
	// A marker that is a symlink is not followed, and not trusted.
	odd := Workdir{Root: t.TempDir()}
	os.WriteFile(filepath.Join(odd.Root, "x"), nil, 0o644)
	os.Symlink("/etc/passwd", filepath.Join(odd.Root, MarkerFile))
	if err := odd.Owned(); err == nil {
		t.Error("a symlinked marker was trusted")
	}
}

// A run's directory is locked from the moment it has its name, and a
// temporary one left by a creator that died is swept.
func TestCreateRunLockedAndSweep(t *testing.T) {
	w := Workdir{Root: t.TempDir()}
	j, err := w.CreateRun("r")
	if err != nil {
		t.Fatal(err)
	}
	if !Live(w.Run("r")) {
		t.Error("a new run is not locked")
	}
	if es := j.Entries(); len(es) != 1 || es[0].Op != "dir" || es[0].Path != w.Run("r") {
		t.Errorf("entries in memory %+v", es)
	}
	left, _ := filepath.Glob(filepath.Join(w.Runs(), ".*"))
	if len(left) != 0 {
		t.Errorf("temporary names left: %v", left)
	}
	j.Close()
	// A creator that died (PID 999999999 is none) before the rename.
	dead := filepath.Join(w.Runs(), ".x.999999999.new")
	os.Mkdir(dead, 0o755)
	os.WriteFile(filepath.Join(dead, JournalFile), []byte(`{"op":"dir"}`+"\n"), 0o644)
	mine := filepath.Join(w.Runs(), ".y."+strconv.Itoa(os.Getpid())+".new")
	os.Mkdir(mine, 0o755)
	notOurs := filepath.Join(w.Runs(), ".z.999999999.new")
	os.Mkdir(notOurs, 0o755)
	os.WriteFile(filepath.Join(notOurs, "data"), nil, 0o644)
	swept, err := w.SweepTemps()
	if err != nil || len(swept) != 1 || swept[0] != dead {
		t.Errorf("swept %v, %v", swept, err)
	}
	for _, p := range []string{mine, notOurs} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s swept: %v", p, err)
		}
	}
}
