package cgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the user the real delegation tests give a cgroup to.
// UNDERHOOD_TEST_UID and UNDERHOOD_TEST_GID name a user CI makes for the
// tests (useradd in .ci/run), else it is nobody.
var nobody, nobodyGroup = testUser()

func testUser() (int, int) {
	uid, err1 := strconv.Atoi(os.Getenv("UNDERHOOD_TEST_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("UNDERHOOD_TEST_GID"))
	if err1 != nil || err2 != nil || uid <= 0 || gid <= 0 {
		return 65534, 65534
	}
	return uid, gid
}

// settleHelper is this test binary run as nobody in a cgroup delegated to
// it: it asks Delegated about its own cgroup, settles out of it, returns,
// and says where it was at each step.
func settleHelper() {
	mount, base := os.Getenv("UNDERHOOD_TEST_MOUNT"), os.Getenv("UNDERHOOD_TEST_BASE")
	where := func() string { return Self().Cgroup }
	u := Self()
	fmt.Println("self", u.Cgroup)
	h := Host{Root: mount, Layout: V2, MemoryRoot: mount, MemoryVersion: 2, Unified: mount}
	if d, err := Delegated(h, DefaultParent, u, true); err != nil {
		fmt.Println("delegated: not:", err)
	} else {
		fmt.Printf("delegated: below %s, settle %v\n", d.Host.Base, d.Settle)
	}
	s, err := Settle(h.Below(base), DefaultParent, "run1", u)
	if err != nil {
		fmt.Println("settle:", err)
		os.Exit(0)
	}
	fmt.Println("settled in", where())
	if err := s.Return(); err != nil {
		fmt.Println("return:", err)
	}
	fmt.Println("back in", where())
	os.Exit(0)
}

// delegateToNobody makes mount/underhood/<prefix>-<random> and gives it to
// nobody as systemd's Delegate=yes does (the directory, cgroup.procs,
// cgroup.subtree_control, cgroup.threads); when the test ends it removes
// it and checks that nothing is left below it.
func delegateToNobody(t *testing.T, mount, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	parent := filepath.Join(mount, DefaultParent)
	hadParent := exists(parent)
	base := filepath.Join(parent, prefix+"-"+hex.EncodeToString(b))
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var left []string
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != base {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("left below the delegated cgroup: %v", left)
		}
		for i := len(left) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(left[i])
		}
		if err := syscall.Rmdir(base); err != nil {
			t.Errorf("cleanup: rmdir %s: %v", base, err)
		}
		if !hadParent {
			_ = syscall.Rmdir(parent)
		}
	})
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(base, f), nobody, nobodyGroup); err != nil && f != "cgroup.threads" {
			t.Fatal(err)
		}
	}
	return base
}

// asNobodyIn runs this test binary's settleHelper as nobody, born in the
// cgroup dir (clone3's CLONE_INTO_CGROUP, as root may).
func asNobodyIn(t *testing.T, dir, mount, base string) string {
	t.Helper()
	bin := copySelf(t)
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{helperEnv + "=settle", "UNDERHOOD_TEST_MOUNT=" + mount, "UNDERHOOD_TEST_BASE=" + base}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobodyGroup)},
		UseCgroupFD: true, CgroupFD: int(fd.Fd()), Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	return string(out)
}

// copySelf copies this test binary where nobody may run it.
func copySelf(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "underhood-cgroup-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "cgroup.test")
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// For real, on this host's cgroup2 hierarchy (the unified one of a hybrid
// host, without controllers): a process of nobody's alone in a cgroup
// delegated to it is told it may use it (or, without a memory controller
// there, why not, after the ownership checks passed), settles into a
// leaf of its own below it (the kernel's common-ancestor rule lets it) and
// comes back, leaving nothing; with another process beside it, it may not.
func TestSettleForReal(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: gives a real cgroup to nobody (CI runs as root; -short skips it)")
	}
	h, err := Detect(sysCgroup)
	if err != nil || h.Unified == "" {
		t.Skipf("requires a cgroup2 mount: %v (layout %s)", err, h.Layout)
	}
	mount := h.Unified
	t.Run("alone", func(t *testing.T) {
		base := delegateToNobody(t, mount, "settletest")
		rel := strings.TrimPrefix(base, mount)
		out := asNobodyIn(t, base, mount, base)
		t.Logf("helper:\n%s", out)
		want := []string{"self " + rel, "settled in " + rel + "/underhood/_run1", "back in " + rel}
		if ctl, _ := readWords(filepath.Join(base, "cgroup.controllers")); ctl["memory"] {
			want = append(want, "delegated: below "+base+", settle true")
		} else {
			want = append(want, "delegated: not: your cgroup "+rel+" has no memory controller delegated to it (cgroup.controllers)")
		}
		for _, w := range want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("helper output lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "return:") {
			t.Errorf("Return failed:\n%s", out)
		}
	})
	t.Run("beside another process", func(t *testing.T) {
		base := delegateToNobody(t, mount, "settletest")
		fd, err := os.Open(base)
		if err != nil {
			t.Fatal(err)
		}
		sleeper := exec.Command("sleep", "30")
		sleeper.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd()), Pdeathsig: syscall.SIGKILL}
		err = sleeper.Start()
		fd.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
		out := asNobodyIn(t, base, mount, base)
		if !strings.Contains(out, "holds other processes than underhood, and cgroup v2") || !strings.Contains(out, "settle: "+base+" holds other processes") {
			t.Errorf("helper output:\n%s", out)
		}
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
}
