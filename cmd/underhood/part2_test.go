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
	for _, bad := range [][]string{{"--pids", "0"}, {"--pids", "abc"}, {"--cpus", "0"}, {"--cpus", "lots"}, {"--cpus", "9999"}} {
		for _, step := range []string{"limits", "run"} {
			r := runUH(t, append([]string{step}, bad...)...)
			if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || !strings.Contains(r.err, bad[1]) || strings.Contains(r.err, "strconv") {
				t.Errorf("%s %v: exit %d, %q; want exit 2 and one line naming the value", step, bad, r.code, r.err)
			}
		}
	}
	assertClean(t)
}

// run takes step 9's --pids (page 10 says so): eight background jobs in a
// run limited to 4 tasks, and the shell cannot fork them all.
func TestRunTakesPids(t *testing.T) {
	needLab(t)
	r := runUH(t, "run", "--pids", "4", "--cpus", "0.5", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c",
		"for i in 1 2 3 4 5 6 7 8; do busybox sleep 1 & done; wait")
	if !strings.Contains(r.err+r.out, "can't fork") {
		t.Errorf("run --pids 4: every fork worked (exit %d)\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
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
