package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The OOM test re-executes this test binary as a process that waits for one
// line on stdin (so it can be moved into the cgroup first), then allocates
// and touches 64 MiB.
const helperEnv = "UNDERHOOD_CGROUP_TEST_HELPER"

var sink []byte

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "settle" {
		settleHelper()
	}
	if os.Getenv(helperEnv) == "alloc" {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		sink = make([]byte, 64<<20)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
		}
		fmt.Println("allocated 64 MiB and survived")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const sysCgroup = "/sys/fs/cgroup"

// realHost skips unless the test can create real cgroups: root, and a memory
// controller under /sys/fs/cgroup.
func realHost(t *testing.T) Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root: creates real cgroups under " + sysCgroup)
	}
	h, err := Detect(sysCgroup)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if h.MemoryVersion == 0 {
		t.Skipf("requires a memory controller: none under %s (layout %s)", sysCgroup, h.Layout)
	}
	return h
}

// realCgroup makes New(h, underhood, test-<random>) and makes sure, even when
// the test fails, that it is removed and checked gone.
func realCgroup(t *testing.T, h Host) Manager {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	m, err := New(h, DefaultParent, "test-"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(h.MemoryRoot, DefaultParent)
	hadParent := exists(parent)
	t.Cleanup(func() {
		if err := m.Remove(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if exists(m.Path()) {
			t.Errorf("cleanup: %s is still there", m.Path())
		}
		if hadParent {
			return
		}
		// This test made the parent: take it away again unless a run that
		// started meanwhile uses it.
		if _, err := RemoveParent(h, DefaultParent); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// child is a process this test started, with stdin on a pipe so that it
// can wait, blocked, until it has been moved into the cgroup.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error // from cmd.Wait, once done is closed
}

// startBlocked starts cmd and, when the test ends, kills it (our own child,
// by pid) if it still runs and checks that it was reaped.
func startBlocked(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
			return
		default:
		}
		_ = cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("child %d not reaped", cmd.Process.Pid)
		}
	})
	return c
}

// wait reaps the child (cmd.Wait) and returns how it ended.
func (c *child) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(10 * time.Second):
		t.Fatalf("process %d still running after 10s", c.cmd.Process.Pid)
		return nil
	}
}

func killedBy(err error) (syscall.Signal, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

func limitFile(m Manager) string {
	if m.Version() == 2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

func TestRealDetect(t *testing.T) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Skip("no /proc/self/mounts")
	}
	types := map[string]string{}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 2 {
			types[f[1]] = f[2]
		}
	}
	want := None
	switch {
	case types[sysCgroup] == "cgroup2":
		want = V2
	case types[sysCgroup] == "tmpfs" && types[sysCgroup+"/unified"] == "cgroup2":
		want = Hybrid
	case types[sysCgroup] == "tmpfs":
		want = V1
	}
	h, err := Detect(sysCgroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Detect(%s) = %+v", sysCgroup, h)
	if h.Layout != want {
		t.Errorf("layout %s, /proc/self/mounts says %s", h.Layout, want)
	}
	if types[sysCgroup+"/memory"] == "cgroup" && (h.MemoryVersion != 1 || h.MemoryRoot != sysCgroup+"/memory") {
		t.Errorf("memory is a v1 mount at %s/memory, Detect says v%d at %q", sysCgroup, h.MemoryVersion, h.MemoryRoot)
	}
}

func TestRealLifecycle(t *testing.T) {
	h := realHost(t)
	m := realCgroup(t, h)
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(read(t, filepath.Join(m.Path(), limitFile(m)))); got != "7340032" {
		t.Errorf("%s reads back %q, want 7340032", limitFile(m), got)
	}
	if m.Version() == 1 && m.SwapLimited() {
		if got := strings.TrimSpace(read(t, filepath.Join(m.Path(), "memory.memsw.limit_in_bytes"))); got != "7340032" {
			t.Errorf("memory.memsw.limit_in_bytes reads back %q, want 7340032", got)
		}
	}
	if err := m.Create(DefaultLimit); err == nil || !strings.Contains(err.Error(), m.Path()) {
		t.Errorf("second Create: %v, want EEXIST naming the path", err)
	}

	// Blocked on read so that it joins before it forks sleep: nothing can
	// escape to the cgroup we started in.
	cmd := exec.Command("/bin/sh", "-c", "read line; sleep 30")
	c := startBlocked(t, cmd)
	pid := cmd.Process.Pid
	if err := m.Join(pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Procs()
	if err != nil || !slices.Contains(pids, pid) {
		t.Fatalf("Procs = %v, %v; want it to contain %d", pids, err, pid)
	}
	for _, f := range m.Files() {
		t.Logf("%s = %q  (%s)", f.Name, f.Value, f.Meaning)
	}
	time.Sleep(50 * time.Millisecond) // let sh fork sleep, so Remove has two to kill
	pids, _ = m.Procs()

	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if exists(m.Path()) {
		t.Errorf("%s still there after Remove", m.Path())
	}
	if !exists(filepath.Join(h.MemoryRoot, DefaultParent)) {
		t.Error("Remove removed the parent")
	}
	if sig, ok := killedBy(c.wait(t)); !ok || sig != syscall.SIGKILL {
		t.Errorf("sh %d: killed by %v (%v), want SIGKILL", pid, sig, ok)
	}
	for _, p := range pids { // sleep, reparented: dead (gone or a zombie)
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] != "Z" && f[2] != "X" && strings.Contains(f[1], "sleep") {
				t.Errorf("process %d %s still running (state %s)", p, f[1], f[2])
			}
		}
	}
}

func TestRealOOMKill(t *testing.T) {
	h := realHost(t)
	m := realCgroup(t, h)
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=alloc")
	c := startBlocked(t, cmd)
	pid := cmd.Process.Pid
	if err := m.Join(pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.stdin, "allocate\n"); err != nil {
		t.Fatal(err)
	}
	err = c.wait(t)
	if sig, ok := killedBy(err); !ok || sig != syscall.SIGKILL {
		t.Fatalf("64 MiB in a 7 MiB cgroup: %v, want killed by SIGKILL", err)
	}
	n, err := m.OOMKills()
	if err != nil || n < 1 {
		t.Errorf("OOMKills = %d, %v; want >= 1", n, err)
	}
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if exists(m.Path()) {
		t.Errorf("%s still there after Remove", m.Path())
	}
}
