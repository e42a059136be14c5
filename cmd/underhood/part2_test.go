package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/steps"
)

// Step 8: the escape reads a host file under chroot and is held by
// pivot_root; nothing is left.
func TestPivotRootHoldsTheEscape(t *testing.T) {
	needLab(t)
	r := runUH(t, "pivot-root", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.out, "Escaped: read /etc/hostname") || !strings.Contains(r.out, "Held:") {
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
	// At --cpus 0.2 the loop does about a fifth of the free one's work; on
	// a busy machine the free loop is slowed too, hence the margin.
	m := regexp.MustCompile(`free: counted to (\d+); limited: to (\d+)`).FindStringSubmatch(r.err)
	if m == nil {
		t.Errorf("no loop counts:\n%s", r.err)
	} else if free, held := atoi(m[1]), atoi(m[2]); held <= 0 || float64(held) > 0.45*float64(free) {
		t.Errorf("the limited loop counted to %d, the free one to %d: want about a fifth, at most 45 %%", held, free)
	} else {
		t.Logf("limited loop: %d of the free loop's %d (%.0f %%)", held, free, 100*float64(held)/float64(free))
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

// run grows with Part 2: --isolation full holds what a plain run does not:
// CapEff is runc's set, the chroot escape is refused, a fork storm stops at
// --pids, and the root is pivoted (no walk up reaches the host's /).
func TestRunIsolationFull(t *testing.T) {
	needLab(t)
	const script = `busybox grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
busybox chroot / /bin/busybox true 2>&1 && echo "chroot worked"
busybox mount -t tmpfs none /etc 2>&1 && echo "mounted"
` + steps.StormScript
	plain := runUH(t, "run", "--cgroup-parent", cgParent, "--pids", "64", "--memory", "64M", "--", "/bin/busybox", "sh", "-c", script)
	full := runUH(t, "run", "--isolation", "full", "--cgroup-parent", cgParent, "--pids", "64", "--memory", "64M", "--", "/bin/busybox", "sh", "-c", script)
	want := fmt.Sprintf("CapEff:\t%016x", caps.Mask(caps.RuncDefault))
	if strings.Contains(plain.out, want) || !strings.Contains(plain.out, "chroot worked") || !strings.Contains(plain.out, "mounted") ||
		!strings.Contains(plain.err, "chroot, every capability of root") {
		t.Errorf("plain run: exit %d\n%s%s", plain.code, plain.out, plain.err)
	}
	if !strings.Contains(full.out, want) || !strings.Contains(full.out, "NoNewPrivs:\t1") || !strings.Contains(full.out, "Seccomp:\t2") ||
		strings.Contains(full.out, "chroot worked") || strings.Contains(full.out, "mounted") || !strings.Contains(full.out, "fork storm are over") ||
		!strings.Contains(full.err, "pivot_root, runc's capabilities") {
		t.Errorf("--isolation full: exit %d\n%s%s", full.code, full.out, full.err)
	}
	assertClean(t)
	for _, bad := range [][]string{{"--isolation", "partial"}, {"--pids", "-1"}, {"--cpus", "0"}} {
		r := runUH(t, append([]string{"run"}, bad...)...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("run %v: exit %d, %q; want exit 2 and one line", bad, r.code, r.err)
		}
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
