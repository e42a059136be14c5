package cgroup

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startIn starts BusyBox sh running script in the cgroup m: it waits for a
// line on stdin until it has been moved in, so that everything it starts
// is charged to the cgroup.
func startIn(t *testing.T, m Manager, script string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("requires /bin/busybox (apt-get install busybox-static)")
	}
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read go; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Join(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return cmd, in
}

// A fork storm stops at pids.max; the kernel counts the refusals, and the
// test (outside the cgroup) is unharmed.
func TestPidsLimitForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no real cgroups")
	}
	h := realHost(t)
	m := realCgroup(t, h)
	if err := m.Create(64 << 20); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLimits(Limits{Pids: 20}); err != nil {
		t.Skipf("no pids controller here: %v", err)
	}
	cmd, in := startIn(t, m, "i=0; while [ $i -lt 200 ]; do busybox sleep 5 & i=$((i+1)); done 2>/dev/null; echo started")
	_, _ = io.WriteString(in, "go\n")
	deadline := time.Now().Add(5 * time.Second)
	var c Counters
	for time.Now().Before(deadline) {
		c, _ = m.Counters()
		if c.PidsDenied > 0 && c.PidsCurrent >= 19 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.PidsDenied == 0 || c.PidsCurrent > 20 {
		t.Errorf("counters %+v: want forks refused (pids.events max > 0) and at most 20 tasks", c)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// A busy loop at 20 % of a CPU is throttled: the kernel says so in cpu.stat.
func TestCPULimitForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no real cgroups")
	}
	h := realHost(t)
	m := realCgroup(t, h)
	if err := m.Create(64 << 20); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLimits(Limits{CPUQuota: 20000, CPUPeriod: 100000}); err != nil {
		t.Skipf("no cpu controller here: %v", err)
	}
	files := m.Files()
	var seen []string
	for _, f := range files {
		seen = append(seen, f.Name+"="+f.Value)
	}
	if !strings.Contains(strings.Join(seen, " "), "20000") {
		t.Errorf("the quota is not among the files: %v", seen)
	}
	cmd, in := startIn(t, m, "while :; do :; done")
	_, _ = io.WriteString(in, "go\n")
	time.Sleep(700 * time.Millisecond)
	c, _ := m.Counters()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if c.NrThrottled == 0 || c.ThrottledUsec == 0 {
		t.Errorf("counters %+v: want the loop throttled", c)
	}
}
