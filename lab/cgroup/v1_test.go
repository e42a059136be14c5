package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestV1Create(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "run1")
	if m.Version() != 1 {
		t.Fatalf("Version = %d, want 1", m.Version())
	}
	want := filepath.Join(k.root, "underhood", "run1")
	if m.Path() != want {
		t.Errorf("Path = %s, want %s", m.Path(), want)
	}
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	wantWrites := []string{"underhood/run1/memory.limit_in_bytes=7340032", "underhood/run1/memory.memsw.limit_in_bytes=7340032"}
	if !slices.Equal(k.writes, wantWrites) {
		t.Errorf("writes %q, want %q (limit first: memsw may not go below it)", k.writes, wantWrites)
	}
	if got := read(t, filepath.Join(want, "memory.limit_in_bytes")); got != "7340032" {
		t.Errorf("memory.limit_in_bytes = %q, want 7340032", got)
	}
	if got := read(t, filepath.Join(want, "memory.memsw.limit_in_bytes")); got != "7340032" {
		t.Errorf("memory.memsw.limit_in_bytes = %q, want 7340032 (no swap)", got)
	}
	if !m.SwapLimited() {
		t.Error("SwapLimited = false, want true")
	}
	// The root's own limit is never touched.
	if got := read(t, filepath.Join(k.root, "memory.limit_in_bytes")); got != "9223372036854771712\n" {
		t.Errorf("root limit changed to %q", got)
	}

	// A second cgroup reuses the parent; the same name again is refused.
	if err := k.newFake("underhood", "run2").Create(DefaultLimit); err != nil {
		t.Errorf("second cgroup: %v", err)
	}
	err := k.newFake("underhood", "run1").Create(DefaultLimit)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "mkdir "+want+": file exists") {
		t.Errorf("Create twice: %v; want EEXIST naming %s", err, want)
	}
}

func TestV1CreateNestedParent(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood/tests", "x")
	if err := m.Create(MinLimit); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(k.root, "underhood/tests/x/memory.limit_in_bytes")); got != "4194304" {
		t.Errorf("limit = %q", got)
	}
}

func TestV1CreateWithoutSwapAccounting(t *testing.T) {
	k := newFakeKernel(t, 1)
	k.noSwap = true
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if m.SwapLimited() {
		t.Error("SwapLimited = true without memory.memsw.limit_in_bytes")
	}
	if exists(filepath.Join(m.Path(), "memory.memsw.limit_in_bytes")) {
		t.Error("Create made memory.memsw.limit_in_bytes: control files must never be created")
	}
}

func TestV1CreateFailureLeavesNothing(t *testing.T) {
	k := newFakeKernel(t, 1)
	k.noLimitFile = true
	m := k.newFake("underhood", "x")
	err := m.Create(DefaultLimit)
	want := "set memory limit: open " + filepath.Join(m.Path(), "memory.limit_in_bytes") + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Create: %v\nwant %s", err, want)
	}
	if exists(m.Path()) {
		t.Error("a failed Create left the cgroup behind")
	}
	if !exists(filepath.Join(k.root, "underhood")) {
		t.Error("the parent is kept")
	}
}

func TestV1CreateRejectsBadLimit(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(0); err == nil {
		t.Error("Create(0) succeeded")
	}
	if exists(m.Path()) {
		t.Error("Create(0) made the cgroup")
	}
}

// A cgroup that only holds processes: made, no memory limit written.
func TestV1CreateNoLimit(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(NoLimit); err != nil {
		t.Fatal(err)
	}
	if !exists(m.Path()) {
		t.Error("Create(NoLimit) made no cgroup")
	}
	if len(k.writes) != 0 {
		t.Errorf("Create(NoLimit) wrote %q, want nothing", k.writes)
	}
}

func TestV1JoinProcs(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if err := m.Join(4242); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(m.Path(), "cgroup.procs")); got != "4242\n" {
		t.Errorf("cgroup.procs = %q, want 4242", got)
	}
	pids, err := m.Procs()
	if err != nil || !slices.Equal(pids, []int{4242}) {
		t.Errorf("Procs = %v, %v", pids, err)
	}
	for _, pid := range []int{0, -1} {
		if err := m.Join(pid); err == nil {
			t.Errorf("Join(%d) succeeded: 0 would move the caller itself", pid)
		}
	}
}

func TestV1ProcsRefusesGarbage(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"0\n", "-1\n", "12 x\n"} {
		write(t, filepath.Join(m.Path(), "cgroup.procs"), bad)
		if _, err := m.Procs(); err == nil {
			t.Errorf("Procs accepted %q", bad)
		}
		if err := m.Kill(); err == nil {
			t.Errorf("Kill accepted %q", bad)
		}
	}
	if len(k.killed) != 0 {
		t.Errorf("killed %v from a garbage list", k.killed)
	}
}

func TestV1OOMKills(t *testing.T) {
	for _, tc := range []struct {
		name, oomControl, failcnt string
		want                      int64
	}{
		{"oom_kill line", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "17\n", 3},
		{"zero", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "5\n", 0},
		{"before 4.13: failcnt", "oom_kill_disable 0\nunder_oom 1\n", "17\n", 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(t, 1)
			m := k.newFake("underhood", "x")
			if err := m.Create(DefaultLimit); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(m.Path(), "memory.oom_control"), tc.oomControl)
			write(t, filepath.Join(m.Path(), "memory.failcnt"), tc.failcnt)
			n, err := m.OOMKills()
			if err != nil || n != tc.want {
				t.Errorf("OOMKills = %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}

// The run's cgroup in the pids hierarchy may still be busy a moment after
// the memory one was removed: Remove waits for it the same way.
func TestV1RemoveWaitsForTheOtherHierarchies(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	pids := m.(*v1).extraDir("pids")
	if err := os.MkdirAll(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	k.busyOn = map[string]int{pids: 2}
	if err := m.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if exists(pids) || exists(m.Path()) {
		t.Errorf("left %s or %s", pids, m.Path())
	}
}

func TestV1KillAndRemove(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(m.Path(), "cgroup.procs"), "101\n102\n")
	k.rmdirBusy = 3
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.killed, []int{101, 102}) {
		t.Errorf("killed %v, want [101 102]", k.killed)
	}
	if exists(m.Path()) {
		t.Error("cgroup still there after Remove")
	}
	if !exists(filepath.Join(k.root, "underhood")) {
		t.Error("Remove removed the parent")
	}
	if k.rmdirCalls != 4 {
		t.Errorf("rmdir called %d times, want 4 (3 × EBUSY, then success)", k.rmdirCalls)
	}
	// Back-off doubles after each EBUSY (after the kill's own short wait).
	if n := len(k.sleeps); n < 3 || !slices.Equal(k.sleeps[n-3:], []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}) {
		t.Errorf("sleeps %v, want to end in 10ms 20ms 40ms", k.sleeps)
	}
	// Gone already: success, nothing done.
	calls := k.rmdirCalls
	if err := m.Remove(); err != nil {
		t.Errorf("Remove of a removed cgroup: %v", err)
	}
	if k.rmdirCalls != calls {
		t.Error("Remove of a missing cgroup called rmdir")
	}
}

func TestV1RemoveGivesUpWhenBusy(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	k.rmdirBusy = 1000
	err := m.Remove()
	if err == nil || !strings.Contains(err.Error(), "remove cgroup: rmdir "+m.Path()+": device or resource busy") {
		t.Fatalf("Remove: %v", err)
	}
	var total time.Duration
	for _, d := range k.sleeps {
		total += d
	}
	if total < removeTimeout || total > 2*removeTimeout {
		t.Errorf("gave up after %s of back-off, want about %s", total, removeTimeout)
	}
}

func TestV1KillTimesOut(t *testing.T) {
	k := newFakeKernel(t, 1)
	k.unkillable = true
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(m.Path(), "cgroup.procs"), "101\n")
	err := m.Kill()
	if err == nil || !strings.Contains(err.Error(), "still there after 5s: [101]") {
		t.Fatalf("Kill: %v", err)
	}
	if err := m.Remove(); err == nil || !exists(m.Path()) {
		t.Errorf("Remove with a live process: %v; want an error and the cgroup kept", err)
	}
}

func TestV1Files(t *testing.T) {
	k := newFakeKernel(t, 1)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range m.Files() {
		names = append(names, f.Name)
		if f.Meaning == "" {
			t.Errorf("%s has no meaning", f.Name)
		}
		if f.Name == "memory.limit_in_bytes" && f.Value != "7340032" {
			t.Errorf("memory.limit_in_bytes = %q", f.Value)
		}
	}
	want := []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.usage_in_bytes",
		"memory.max_usage_in_bytes", "memory.failcnt", "memory.oom_control", "tasks"}
	if !slices.Equal(names, want) {
		t.Errorf("Files = %v, want %v", names, want)
	}
	k2 := newFakeKernel(t, 1)
	k2.noSwap = true
	m2 := k2.newFake("underhood", "x")
	if err := m2.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if n := len(m2.Files()); n != len(want)-1 {
		t.Errorf("without memsw: %d files, want %d (missing ones skipped)", n, len(want)-1)
	}
}
