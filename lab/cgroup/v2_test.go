package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestV2Create(t *testing.T) {
	k := newFakeKernel(t, 2)
	m := k.newFake("underhood", "run1")
	if m.Version() != 2 {
		t.Fatalf("Version = %d, want 2", m.Version())
	}
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	wantWrites := []string{
		"cgroup.subtree_control=+memory +pids +cpu",
		"underhood/cgroup.subtree_control=+memory +pids +cpu",
		"underhood/run1/memory.max=7340032",
		"underhood/run1/memory.swap.max=0",
	}
	if !slices.Equal(k.writes, wantWrites) {
		t.Errorf("writes:\n got %q\nwant %q", k.writes, wantWrites)
	}
	if got := read(t, filepath.Join(k.root, "underhood/run1/cgroup.controllers")); got != "cpu memory pids" {
		t.Errorf("the cgroup's controllers = %q, want cpu memory pids", got)
	}
	if got := read(t, filepath.Join(m.Path(), "memory.max")); got != "7340032" {
		t.Errorf("memory.max = %q", got)
	}

	// A second cgroup finds the controllers on and writes only its limits.
	k.writes = nil
	if err := k.newFake("underhood", "run2").Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if want := []string{"underhood/run2/memory.max=7340032", "underhood/run2/memory.swap.max=0"}; !slices.Equal(k.writes, want) {
		t.Errorf("second Create writes %q, want %q", k.writes, want)
	}
	if !m.SwapLimited() {
		t.Error("SwapLimited = false")
	}
	if got := read(t, filepath.Join(k.root, "underhood/cgroup.procs")); got != "" {
		t.Errorf("the parent holds processes %q: cgroup v2 forbids it", got)
	}
}

// A cgroup that only holds processes: the controllers on, no limit written.
func TestV2CreateNoLimit(t *testing.T) {
	k := newFakeKernel(t, 2)
	m := k.newFake("underhood", "run1")
	if err := m.Create(NoLimit); err != nil {
		t.Fatal(err)
	}
	want := []string{"cgroup.subtree_control=+memory +pids +cpu", "underhood/cgroup.subtree_control=+memory +pids +cpu"}
	if !slices.Equal(k.writes, want) {
		t.Errorf("writes:\n got %q\nwant %q", k.writes, want)
	}
	if !exists(m.Path()) {
		t.Error("Create(NoLimit) made no cgroup")
	}
}

func TestV2CreateEnablesOnlyMissing(t *testing.T) {
	for _, tc := range []struct {
		name, controllers, subtree string
		want                       []string
	}{
		{"memory on already", "cpu memory pids", "memory", []string{"+pids +cpu"}},
		{"both on already", "cpu memory pids", "cpu memory pids", nil},
		{"no pids controller", "cpu memory", "", []string{"+memory +cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(t, 2)
			write(t, filepath.Join(k.root, "cgroup.controllers"), tc.controllers)
			write(t, filepath.Join(k.root, "cgroup.subtree_control"), tc.subtree)
			if err := k.newFake("underhood", "x").Create(DefaultLimit); err != nil {
				t.Fatal(err)
			}
			if got := k.writesTo("cgroup.subtree_control"); !slices.Equal(got, tc.want) {
				t.Errorf("root cgroup.subtree_control writes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestV2CreateWithoutMemory(t *testing.T) {
	k := newFakeKernel(t, 2)
	write(t, filepath.Join(k.root, "cgroup.controllers"), "cpu pids")
	err := k.newFake("underhood", "x").Create(DefaultLimit)
	want := "enable controllers: memory is not available in " + filepath.Join(k.root, "cgroup.controllers")
	if err == nil || err.Error() != want {
		t.Errorf("Create: %v, want %s", err, want)
	}
	if exists(filepath.Join(k.root, "underhood")) {
		t.Error("Create made directories before finding there is no memory controller")
	}
}

func TestV2CreateWithoutSwap(t *testing.T) {
	k := newFakeKernel(t, 2)
	k.noSwap = true
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if m.SwapLimited() || exists(filepath.Join(m.Path(), "memory.swap.max")) {
		t.Error("memory.swap.max made up or reported")
	}
}

func TestV2JoinOOMKills(t *testing.T) {
	k := newFakeKernel(t, 2)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if err := m.Join(777); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(m.Path(), "cgroup.procs")); got != "777\n" {
		t.Errorf("cgroup.procs = %q", got)
	}
	write(t, filepath.Join(m.Path(), "memory.events"), "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
	if n, err := m.OOMKills(); err != nil || n != 2 {
		t.Errorf("OOMKills = %d, %v; want 2", n, err)
	}
	if err := os.Mkdir(filepath.Join(m.Path(), "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Join(778); err == nil || !strings.Contains(err.Error(), "only in leaves") {
		t.Errorf("Join into a cgroup with children: %v", err)
	}
}

func TestV2KillWithCgroupKill(t *testing.T) {
	k := newFakeKernel(t, 2)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(m.Path(), "cgroup.procs"), "201\n202\n")
	write(t, filepath.Join(m.Path(), "cgroup.events"), "populated 1\nfrozen 0\n")
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if len(k.killed) != 0 {
		t.Errorf("sent kill(2) to %v although cgroup.kill exists", k.killed)
	}
	if exists(m.Path()) {
		t.Error("cgroup still there")
	}
	if !exists(filepath.Join(k.root, "underhood")) {
		t.Error("Remove removed the parent")
	}
}

func TestV2KillWithoutCgroupKill(t *testing.T) {
	k := newFakeKernel(t, 2)
	k.noCgroupKill = true
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(m.Path(), "cgroup.procs"), "201\n202\n")
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.killed, []int{201, 202}) {
		t.Errorf("killed %v", k.killed)
	}
}

func TestV2Files(t *testing.T) {
	k := newFakeKernel(t, 2)
	m := k.newFake("underhood", "x")
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range m.Files() {
		names = append(names, f.Name)
		if f.Meaning == "" {
			t.Errorf("%s: no meaning", f.Name)
		}
	}
	// The fake kernel has no memory.peak (Linux 5.19+): skipped.
	want := []string{"memory.max", "memory.current", "memory.events", "memory.swap.max", "cgroup.procs", "pids.current", "pids.max"}
	if !slices.Equal(names, want) {
		t.Errorf("Files = %v, want %v", names, want)
	}
}

func TestHybridWithMemoryOnUnified(t *testing.T) {
	k := newFakeKernel(t, 2)
	h := Host{Root: filepath.Dir(k.root), Layout: Hybrid, MemoryRoot: k.root, MemoryVersion: 2, Unified: k.root}
	m, err := New(h, DefaultParent, "x")
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 2 {
		t.Errorf("hybrid with memory on cgroup2: driver v%d, want v2", m.Version())
	}
}

// A user's run below root's cgroups, which hand memory down but not cpu:
// the write refused (not the user's to change), each controller is tried
// alone, as runc does; cpu is left off, and memory still fails loudly.
func TestV2CreateLeavesOffWhatItMayNot(t *testing.T) {
	for _, tc := range []struct {
		name, subtree string
		wantErr       string
	}{
		{"memory handed down", "memory pids", ""},
		{"memory not handed down", "pids", "enable controllers +memory: write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(t, 2)
			write(t, filepath.Join(k.root, "cgroup.subtree_control"), tc.subtree)
			ops := k.ops()
			sub := filepath.Join(k.root, "cgroup.subtree_control")
			ops.write = func(p, v string) error {
				if p == sub {
					return &os.PathError{Op: "write", Path: p, Err: os.ErrPermission}
				}
				return k.write(p, v)
			}
			m := withOps(mustNew(t, k.host(), "underhood", "x"), ops)
			err := m.Create(DefaultLimit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Create: %v, want …%s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(m.Path(), "cgroup.controllers")); got != "memory pids" {
				t.Errorf("the run's controllers = %q, want memory pids (cpu left off)", got)
			}
			if err := m.SetLimits(Limits{Pids: 64, CPUQuota: 20000}); !errors.Is(err, ErrNoController) {
				t.Errorf("a CPU limit without the cpu controller: %v, want ErrNoController", err)
			}
		})
	}
}

func mustNew(t *testing.T, h Host, parent, name string) Manager {
	t.Helper()
	m, err := New(h, parent, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
