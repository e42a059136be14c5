package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/overlay"
)

// The layers step: the payload writes and deletes on an overlay, the host
// lists the upper directory with a whiteout, the lower layer is byte for
// byte the same before and after, and no overlay mount, upper or work
// directory is left.
func TestLayersLeaveTheLowerUntouched(t *testing.T) {
	needLab(t)
	needOverlay(t)
	lower := filepath.Join(workdir, "rootfs")
	before, err := overlay.Fingerprint(lower)
	if err != nil {
		t.Fatal(err)
	}
	r := runUH(t, "layers", "--cgroup-parent", cgParent)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"/hello.txt         written", "/bin/busybox       deleted: a whiteout", "no overlay is mounted"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("no %q in the step's notes:\n%s", want, r.err)
		}
	}
	if !strings.Contains(r.out, "can't open '/hello.txt'") {
		t.Errorf("the second run saw the first one's file:\n%s", r.out)
	}
	assertNoOverlay(t)
	assertClean(t)
	if c := runUH(t, "check", stepNumber("layers")); c.code != 0 || !strings.Contains(c.out, "overlayfs") {
		t.Errorf("check of the layers step: exit %d\n%s%s", c.code, c.out, c.err)
	}

	// A payload of one's own: the container's / is the overlay, and what it
	// writes is listed from the upper directory.
	r = runUH(t, "layers", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c",
		"busybox awk '$5 == \"/\" { print \"root fs:\", $9 }' /proc/self/mountinfo; busybox mkdir /etc/mine; echo x > /etc/mine/f")
	if r.code != 0 || !strings.Contains(r.out, "root fs: overlay") || !strings.Contains(r.err, "/etc/mine/f") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertNoOverlay(t)
	assertClean(t)
	if after, err := overlay.Fingerprint(lower); err != nil || after != before {
		t.Errorf("the lower layer changed: %s before, %s after (%v)", before, after, err)
	}
	if _, err := os.Stat(filepath.Join(lower, "bin", "busybox")); err != nil {
		t.Errorf("the lower lost bin/busybox: %v", err)
	}
}

// assertNoOverlay: no overlay mount below the lab, and no upper or work
// directory of any run.
func assertNoOverlay(t *testing.T) {
	t.Helper()
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, " - overlay ") && strings.Contains(l, workdir) {
			t.Errorf("overlay still mounted: %s", l)
		}
	}
	for _, d := range []string{"upper", "work"} {
		if left, _ := filepath.Glob(filepath.Join(workdir, "runs", "*", d)); len(left) > 0 {
			t.Errorf("left: %v", left)
		}
	}
}

// Killed with -9 while its payload runs, underhood leaves the overlay
// mounted on the host, journaled: cleanup unmounts it and removes the
// upper and work directories.
func TestLayersKill9ThenCleanup(t *testing.T) {
	needLab(t)
	needOverlay(t)
	cmd := exec.Command(binary, "--workdir", workdir, "layers", "--cgroup-parent", cgParent, "--",
		"/bin/busybox", "sh", "-c", "echo x > /f; exec busybox sleep 60")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Should the test stop early: underhood (ours, by PID) and its run go.
	t.Cleanup(func() { _ = cmd.Process.Kill(); runUH(nil, "cleanup", "--all") })
	waitFor(t, 60*time.Second, func() bool {
		left, _ := filepath.Glob(filepath.Join(workdir, "runs", "*", "upper", "f"))
		return len(left) == 1
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), " - overlay ") || !strings.Contains(string(mi), workdir) {
		t.Errorf("no overlay mounted after kill -9: the cleanup below tests nothing")
	}
	r := runUH(t, "cleanup", "--all")
	if r.code != 0 || !strings.Contains(r.out, "unmounted") {
		t.Errorf("cleanup: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertNoOverlay(t)
	assertClean(t)
}

// needOverlay skips, loudly, where the kernel has no overlayfs (the VM
// test's kernel has it as a module, which the VM does not load).
func needOverlay(t *testing.T) {
	t.Helper()
	if err := overlay.Supported(); err != nil {
		t.Skipf("requires overlayfs: %v", err)
	}
}
