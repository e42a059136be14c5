package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
)

const nobody = 65534

// A rootless run below a cgroup delegated to its user, cut short (kill -9
// of underhood): its journal names the base, the run's cgroup and the leaf
// underhood waited in. Cleanup, as root, follows the base only when the
// run's owner owns it, and then removes both cgroups, ending what is in
// them; a base of someone else's is not followed, and nothing below it is
// touched. Root: real cgroups on this host's cgroup2 tree, described as a
// v2 memory hierarchy (cleanup does not look at controllers).
func TestCleanupFollowsTheOwnersBase(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: real cgroups (CI runs as root; -short skips it)")
	}
	detected, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil || detected.Unified == "" {
		t.Skipf("requires a cgroup2 mount: %v", err)
	}
	mount := detected.Unified
	host := cgroup.Host{Root: detected.Root, Layout: detected.Layout, MemoryRoot: mount, MemoryVersion: 2, Unified: mount}
	for _, tc := range []struct {
		name      string
		baseOwner int
		followed  bool
	}{
		{"the owner's base", nobody, true},
		{"root's base", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := filepath.Join(mount, cgroup.DefaultParent)
			hadParent := exists(parent)
			base := filepath.Join(parent, RandomName("cleanuptest"))
			run := filepath.Join(base, cgroup.DefaultParent, "box")
			leaf := cgroup.LeafOf(run)
			for _, d := range []string{run, leaf} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Before sleepIn's: run after it has ended the sleep.
			t.Cleanup(func() {
				for _, d := range []string{leaf, run, filepath.Dir(run), base} {
					if err := rmdirSoon(d); err != nil && !os.IsNotExist(err) {
						t.Errorf("rmdir %s: %v", d, err)
					}
				}
				if !hadParent {
					_ = syscall.Rmdir(parent)
				}
			})
			if err := os.Chown(base, tc.baseOwner, tc.baseOwner); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{filepath.Dir(run), run, leaf} { // the user made them
				if err := os.Chown(d, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			}
			sleeper := sleepIn(t, run)

			w := state.Workdir{Root: t.TempDir()}
			j, err := w.CreateRun("box")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []state.Entry{
				{Op: "run", Name: "box", Kind: "run", Parent: cgroup.DefaultParent, Base: base},
				{Op: "leaf", Path: leaf},
				{Op: "cgroup", Path: run},
			} {
				if err := j.Record(e); err != nil {
					t.Fatal(err)
				}
			}
			j.Close()
			if err := os.Chown(w.Run("box"), nobody, nobody); err != nil { // a rootless run is its user's
				t.Fatal(err)
			}
			reps, err := CleanupAll(w, host)
			if err != nil {
				t.Fatal(err)
			}
			if len(reps) != 1 {
				t.Fatalf("reports %+v", reps)
			}
			r := reps[0]
			if tc.followed {
				if !slices.Equal(r.Cgroups, []string{run, leaf}) || len(r.Spared) != 0 || exists(run) || exists(leaf) {
					t.Errorf("report %+v; want %s and %s removed", r, run, leaf)
				}
				if err := sleeper.Wait(); err == nil {
					t.Error("the process in the run's cgroup was not ended")
				}
				return
			}
			if len(r.Cgroups) != 0 || !exists(run) || !exists(leaf) || len(r.Spared) != 3 ||
				!strings.Contains(r.Spared[0], "owned by uid 0, not by the run's owner (uid 65534)") {
				t.Errorf("report %+v; want the base refused, %s and %s left", r, run, leaf)
			}
			if pids, _ := os.ReadFile(filepath.Join(run, "cgroup.procs")); len(pids) == 0 {
				t.Error("the cgroup under a base not the owner's was emptied")
			}
		})
	}
}

// Below underhood/ there are users' cgroups now. A journal in a user's
// work directory (its run directories the user's) is the user's to write:
// cleanup, as root, removes only the user's own cgroup of such a run, a
// forged one naming a cgroup of root's (another user's alike) is left,
// its process alive; and of the parents above the run's cgroup it removes
// only what the user could: not the cgroup root delegated to the user.
func TestCleanupOfAUsersRunTouchesOnlyTheUsers(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: real cgroups (CI runs as root; -short skips it)")
	}
	host, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil || host.MemoryVersion == 0 {
		t.Skipf("requires a memory cgroup controller: %v", err)
	}
	delegated, other := RandomName("underhood/cleanuptest"), RandomName("underhood/cleanuptest")
	mk := func(parent, name string) cgroup.Manager {
		m, err := cgroup.New(host, parent, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Create(cgroup.NoLimit); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Remove(); err != nil {
				t.Error(err)
			}
			if err := rmdirSoon(filepath.Dir(m.Path())); err != nil && !os.IsNotExist(err) {
				t.Error(err)
			}
		})
		return m
	}
	box, victim := mk(delegated, "box"), mk(other, "victim")
	for _, d := range []string{filepath.Dir(box.Path()), box.Path()} { // delegated, and the user's own
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	if err := victim.Join(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	w := state.Workdir{Root: t.TempDir()}
	for _, r := range []struct {
		name, parent string
		m            cgroup.Manager
	}{{"box", delegated, box}, {"victim", other, victim}} {
		j, err := w.CreateRun(r.name)
		if err != nil {
			t.Fatal(err)
		}
		j.Record(state.Entry{Op: "run", Name: r.name, Kind: "run", Parent: r.parent})
		j.Record(state.Entry{Op: "cgroup", Path: r.m.Path()})
		j.Close()
		if err := os.Chown(w.Run(r.name), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := CleanupAll(w, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || !slices.Equal(reps[0].Cgroups, []string{box.Path()}) || exists(box.Path()) {
		t.Errorf("the user's run: reports %+v; want %s removed", reps, box.Path())
	}
	if !exists(filepath.Dir(box.Path())) {
		t.Errorf("the cgroup delegated to the user, %s, was removed", filepath.Dir(box.Path()))
	}
	if procs, err := victim.Procs(); err != nil || len(procs) != 1 || len(reps) != 2 || len(reps[1].Cgroups) != 0 ||
		len(reps[1].Spared) != 1 || !strings.Contains(reps[1].Spared[0], "not this run's") {
		t.Errorf("a cgroup of root's named by a user's journal: procs %v %v; reports %+v", procs, err, reps)
	}
}

// sleepIn starts a sleep born in the cgroup dir, and ends it with the test.
func sleepIn(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd()), Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// rmdirSoon removes an empty cgroup, waiting a moment for a process just
// ended to leave it.
func rmdirSoon(d string) error {
	var err error
	for range 50 {
		if err = syscall.Rmdir(d); err != syscall.EBUSY {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
