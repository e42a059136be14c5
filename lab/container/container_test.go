package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
)

func TestRemoveTreeKeepsSymlinkTargets(t *testing.T) {
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	os.WriteFile(precious, []byte("keep me"), 0o644)
	dir := filepath.Join(t.TempDir(), "run")
	os.MkdirAll(filepath.Join(dir, "rootfs", "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs", "bin", "busybox"), []byte("x"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "rootfs", "escape"))
	os.Symlink(precious, filepath.Join(dir, "link-to-file"))
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", dir)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep me" {
		t.Errorf("a symlink target outside the run was touched: %v", err)
	}
	if err := removeTree(dir); err != nil {
		t.Errorf("second removal: %v", err)
	}
}

func TestRemoveTreeRefusesRoot(t *testing.T) {
	for _, p := range []string{"/", "relative/path", ""} {
		if err := removeTree(p); err == nil {
			t.Errorf("removeTree(%q) accepted", p)
		}
	}
}

// Cleanup replays a journal on a fixture work directory: a dead payload,
// no cgroup left, a stray file in the run directory.
func TestCleanupFixtureIdempotent(t *testing.T) {
	w := state.Workdir{Root: t.TempDir()}
	j, err := w.CreateRun("left")
	if err != nil {
		t.Fatal(err)
	}
	j.Record(state.Entry{Op: "run", Name: "left", Kind: "run"})
	j.Record(state.Entry{Op: "pid", PID: 999999999, Start: 1}) // long gone
	j.Record(state.Entry{Op: "cgroup", Path: filepath.Join(w.Root, "no-such-cgroup")})
	j.Close()
	os.MkdirAll(filepath.Join(w.Run("left"), "rootfs", "bin"), 0o755)
	MountinfoPath = filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(MountinfoPath, []byte("22 1 254:0 / / rw - ext4 /dev/vda rw\n"), 0o644)
	defer func() { MountinfoPath = "/proc/self/mountinfo" }()

	reps, err := CleanupAll(w, cgroup.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Removed != w.Run("left") || len(reps[0].Killed) != 0 {
		t.Errorf("reports %+v", reps)
	}
	if _, err := os.Stat(w.Run("left")); !os.IsNotExist(err) {
		t.Error("run directory left")
	}
	reps, err = CleanupAll(w, cgroup.Host{})
	if err != nil || len(reps) != 0 {
		t.Errorf("second cleanup: %v, %+v", err, reps)
	}
}

// A mount still below a run stops the deletion: cleanup never walks into
// a mounted filesystem.
func TestCleanupStopsAtMount(t *testing.T) {
	w := state.Workdir{Root: t.TempDir()}
	j, _ := w.CreateRun("mounted")
	j.Close()
	MountinfoPath = filepath.Join(t.TempDir(), "mountinfo")
	line := "40 22 0:34 / " + w.Run("mounted") + "/rootfs/proc rw - proc proc rw\n"
	os.WriteFile(MountinfoPath, []byte("22 1 254:0 / / rw - ext4 /dev/vda rw\n"+line), 0o644)
	defer func() { MountinfoPath = "/proc/self/mountinfo" }()
	_, err := Cleanup(w, cgroup.Host{}, "mounted")
	if err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("cleanup with a mount left: %v", err)
	}
	if _, err := os.Stat(w.Run("mounted")); err != nil {
		t.Error("the run directory was deleted although something is mounted below it")
	}
}

func TestCleanupRefusesSymlinkedRun(t *testing.T) {
	w := state.Workdir{Root: t.TempDir()}
	os.MkdirAll(w.Runs(), 0o755)
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, "keep"), nil, 0o644)
	os.Symlink(target, w.Run("sneaky"))
	if _, err := Cleanup(w, cgroup.Host{}, "sneaky"); err == nil {
		t.Error("cleanup followed a symlinked run directory")
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Error("the symlink's target was touched")
	}
}

func TestRandomNames(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := RandomName("box")
		if err := state.ValidName(n); err != nil || !strings.HasPrefix(n, "box-") {
			t.Fatalf("%q: %v", n, err)
		}
		if seen[n] {
			t.Fatalf("duplicate %q in 1000", n)
		}
		seen[n] = true
	}
}
