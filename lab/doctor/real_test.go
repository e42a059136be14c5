package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/netns/nettest"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// TestRunReal runs doctor on this machine. On a hybrid host with memory on
// v1 (the lab's VM) it must say so; as root its probe must succeed and leave
// nothing behind.
func TestRunReal(t *testing.T) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Skip("requires /proc/self/mounts")
	}
	types := map[string]string{}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 2 {
			types[f[1]] = f[2]
		}
	}
	if types["/sys/fs/cgroup"] != "tmpfs" || types["/sys/fs/cgroup/unified"] != "cgroup2" || types["/sys/fs/cgroup/memory"] != "cgroup" {
		t.Skip("requires a hybrid cgroup host with memory on v1 (tmpfs at /sys/fs/cgroup, cgroup2 at unified, v1 memory)")
	}
	parent := "/sys/fs/cgroup/memory/" + cgroup.DefaultParent
	_, err = os.Stat(parent)
	hadParent := err == nil

	before := nettest.Take(t)
	r := Run(Options{Workdir: state.Workdir{Root: t.TempDir()}, Probe: true, Euid: os.Geteuid()})
	nettest.Unchanged(t, before)
	for _, c := range r.Checks {
		t.Logf("%-20s %-4s %s | %s", c.Check, c.Status, c.Detail, c.Hint)
	}
	if r.Layout != cgroup.Hybrid || r.MemoryVersion != 1 || r.MemoryRoot != "/sys/fs/cgroup/memory" || r.Unified != "/sys/fs/cgroup/unified" {
		t.Errorf("layout %s, memory v%d at %s, unified %s; want hybrid, v1 at /sys/fs/cgroup/memory",
			r.Layout, r.MemoryVersion, r.MemoryRoot, r.Unified)
	}
	if c := find(t, r, "environment"); c.Detail == "" || c.Status == ui.Fail {
		t.Errorf("environment row %+v", c)
	}
	if c := find(t, r, "architecture"); c.Status == ui.Warn && strings.Contains(c.Detail, "emulated") {
		t.Errorf("this test binary runs natively, yet %+v", c)
	}
	if c := find(t, r, "cgroup layout"); c.Status != ui.OK || !strings.HasPrefix(c.Detail, "hybrid:") {
		t.Errorf("layout row %+v", c)
	}
	if c := find(t, r, "memory controller"); c.Status != ui.OK || !strings.HasPrefix(c.Detail, "cgroup v1 at /sys/fs/cgroup/memory") {
		t.Errorf("memory row %+v", c)
	}
	probe := find(t, r, "create a cgroup")
	if os.Geteuid() != 0 {
		if probe.Detail != "not tested: needs root" {
			t.Errorf("probe row %+v", probe)
		}
		return
	}
	if probe.Status != ui.OK {
		t.Errorf("probe row %+v", probe)
	}
	if c := find(t, r, "veth pair"); (netns.VethSupported() == nil) != (c.Status == ui.OK) || !strings.Contains(c.Detail, "10.200.0.0/16") && c.Status == ui.OK {
		t.Errorf("veth row %+v", c)
	}
	left, _ := filepath.Glob(parent + "/doctor-*")
	if len(left) > 0 {
		t.Errorf("probe left %v", left)
	}
	if _, err := os.Stat(parent); (err == nil) != hadParent {
		t.Errorf("%s: existed before %v, exists after %v: the probe must leave it as found", parent, hadParent, err == nil)
	}
}
