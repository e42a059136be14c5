package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/caps"
)

// Step 8: the escape reads a host file under chroot (/etc/hostname, or
// /etc/passwd where the host has no hostname file, as in the VM test) and
// is held by pivot_root; nothing is left.
func TestPivotRootHoldsTheEscape(t *testing.T) {
	needLab(t)
	r := runUH(t, "pivot-root", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.out, "Escaped: read /etc/") || !strings.Contains(r.out, "Held:") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
	// The same escape, given as the payload of the pivoted container.
	r = runUH(t, "pivot-root", "--cgroup-parent", cgParent, "--", "/bin/underhood", "escape", "/etc/hostname")
	if r.code != 1 || !strings.Contains(r.out, "Held:") {
		t.Errorf("escape in pivot_root: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// Step 9: the fork bomb is stopped at pids.max with pids.events raised, the
// loop throttled; underhood stands.
func TestLimitsStopABombAndThrottle(t *testing.T) {
	needLab(t)
	r := runUH(t, "limits", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.err, "the kernel refused") || !strings.Contains(r.err, "throttled in") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	if strings.Contains(r.err, "refused 0 forks") {
		t.Errorf("no fork refused:\n%s", r.err)
	}
	assertClean(t)
	for _, bad := range [][]string{{"--pids", "0"}, {"--cpus", "0"}, {"--cpus", "lots"}, {"--cpus", "9999"}} {
		r := runUH(t, append([]string{"limits"}, bad...)...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line", bad, r.code, r.err)
		}
	}
}

// Step 10: with runc's privileges CapEff is runc's set and mount, mknod and
// the escape are refused.
func TestPrivilegesAreDropped(t *testing.T) {
	needLab(t)
	r := runUH(t, "privileges", "--cgroup-parent", cgParent)
	want := fmt.Sprintf("CapEff:\t%016x", caps.Mask(caps.RuncDefault))
	if r.code != 0 || !strings.Contains(r.out, want) || !strings.Contains(r.out, "NoNewPrivs:\t1") ||
		!strings.Contains(r.out, "Refused: chroot") || !strings.Contains(r.out, "mknod: /dev/sda1: Operation not permitted") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}
