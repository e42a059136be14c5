package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/steps"
)

// nobody is the user the rootless tests run underhood as, and nobodyGroup
// its group: a user CI makes for them (useradd in .ci/run, removed after)
// when UNDERHOOD_TEST_UID and UNDERHOOD_TEST_GID name it, else nobody.
var nobody, nobodyGroup = testUser()

// testUser is UNDERHOOD_TEST_UID and UNDERHOOD_TEST_GID, or 65534 (nobody).
func testUser() (int, int) {
	uid, err1 := strconv.Atoi(os.Getenv("UNDERHOOD_TEST_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("UNDERHOOD_TEST_GID"))
	if err1 != nil || err2 != nil || uid <= 0 || gid <= 0 {
		return 65534, 65534
	}
	return uid, gid
}

// nobodyHome makes a home directory of nobody's beside the lab, removed
// when the test ends.
func nobodyHome(t *testing.T, name string) string {
	t.Helper()
	home := filepath.Join(filepath.Dir(workdir), name)
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chown(home, nobody, nobodyGroup); err != nil {
		t.Fatal(err)
	}
	return home
}

// asNobodyIn runs underhood as nobody from home with the work directory
// wd; with in, it is born in that cgroup (clone3's CLONE_INTO_CGROUP, as
// root may), as systemd places a user's process in its delegated scope.
func asNobodyIn(t *testing.T, home, wd, in string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--workdir", wd, "--no-color"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobodyGroup)}, Pdeathsig: syscall.SIGKILL}
	if in != "" {
		fd, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer fd.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(fd.Fd())
	}
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NO_COLOR=1"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code, r.err = -1, r.err+err.Error()
	}
	return r
}

// delegation is a cgroup given to nobody in each hierarchy it needs.
type delegation struct {
	dirs   []string // the delegated cgroup in each hierarchy, memory's first
	parent string   // the same, relative to each hierarchy's root
}

// delegateToNobody emulates what systemd's Delegate=yes (or root by hand)
// does: it makes parent, below this test's own, in the memory hierarchy
// (and on v1 the pids and cpu ones), and gives it to nobody: the directory
// and the files that move processes and hand controllers down. On v2,
// root's cgroups above it hand memory, pids and cpu down first, as
// systemd's do for a user's delegated scope.
func delegateToNobody(t *testing.T, h cgroup.Host, parent string) delegation {
	t.Helper()
	d := delegation{parent: parent}
	files := []string{"cgroup.procs", "tasks", "cgroup.clone_children"}
	roots := []string{h.MemoryRoot}
	if h.MemoryVersion == 2 {
		files = []string{"cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "memory.oom.group", "memory.reclaim"}
		dir := h.MemoryRoot
		for _, c := range strings.Split(parent, "/") {
			on, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
			avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			var add []string
			for _, ctl := range []string{"memory", "pids", "cpu"} {
				if slices.Contains(strings.Fields(string(avail)), ctl) && !slices.Contains(strings.Fields(string(on)), ctl) {
					add = append(add, "+"+ctl)
				}
			}
			if len(add) > 0 {
				if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
					t.Fatalf("hand %v down in %s: %v", add, dir, err)
				}
			}
			dir = filepath.Join(dir, c)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
	} else {
		for _, c := range []string{"pids", "cpu"} {
			if _, err := os.Stat(filepath.Join(h.Root, c, "cgroup.procs")); err == nil {
				roots = append(roots, filepath.Join(h.Root, c))
			}
		}
	}
	for _, root := range roots {
		dir := filepath.Join(root, parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		d.dirs = append(d.dirs, dir)
		for _, f := range append([]string{""}, files...) {
			if err := os.Chown(filepath.Join(dir, f), nobody, nobodyGroup); err != nil && (f == "" || f == "cgroup.procs") {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { d.remove(t) })
	return d
}

// left lists the cgroups below the delegated one, in every hierarchy.
func (d delegation) left() []string {
	var left []string
	for _, dir := range d.dirs {
		_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() && p != dir {
				left = append(left, p)
			}
			return nil
		})
	}
	return left
}

// remove takes the delegation back, deepest first.
func (d delegation) remove(t *testing.T) {
	left := d.left()
	for i := len(left) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(left[i])
	}
	for _, dir := range d.dirs {
		if err := syscall.Rmdir(dir); err != nil && !os.IsNotExist(err) {
			t.Errorf("remove the delegated cgroup %s: %v", dir, err)
		}
	}
}

// run --rootless by a user with a cgroup delegated to it gets its memory
// limit for real: the article's hog is OOM-killed (exit 137) in a cgroup
// below the delegated one, by the kernel's count; on v1 the delegated
// cgroup is given with --cgroup-parent, on v2 it is the user's own
// cgroup, as under 'systemd-run --user --scope -p Delegate=yes', which
// underhood leaves for a leaf of its own and comes back to. Nothing is
// left below it. Without one, the run says why and what would give one,
// and runs without limits; a --cgroup-parent not the user's is refused.
func TestRunRootlessDelegated(t *testing.T) {
	needLab(t)
	if why := ns.UserNSRefused(""); why != "" {
		t.Skipf("this kernel refuses user namespaces: %s", why)
	}
	host, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil || host.MemoryVersion == 0 {
		t.Skipf("requires a memory controller: %v (layout %s)", err, host.Layout)
	}
	home := nobodyHome(t, "nobody-delegated")
	wd := filepath.Join(home, "lab")
	if r := asNobodyIn(t, home, wd, "", "download", "--from", "/bin/busybox"); r.code != 0 {
		t.Fatalf("download as nobody: exit %d\n%s%s", r.code, r.out, r.err)
	} else if want := "without sudo: underhood --workdir " + wd + " run --rootless"; !strings.Contains(strings.Join(strings.Fields(r.err), " "), want) {
		t.Errorf("download as nobody: its Next lacks %q:\n%s", want, r.err)
	}
	hog := []string{"--", "/bin/busybox", "sh", "-c", steps.HogScript}

	// No cgroup delegated: the reason and its remedy, and the run works.
	fix := "on cgroup v1 only root can make you one"
	if host.MemoryVersion == 2 {
		fix = "for one: systemd-run --user --scope -p Delegate=yes underhood --workdir " + wd + " run --rootless …"
	}
	r := asNobodyIn(t, home, wd, "", append([]string{"run", "--rootless", "--memory", "7M"}, hog...)...)
	if r.code != 0 || !strings.Contains(r.err, "no memory limit") || !regexp.MustCompile(`(?m)^No cgroup limits: .* is (the root cgroup|not delegated to you).*; `+regexp.QuoteMeta(fix)).MatchString(r.err) {
		t.Errorf("without a delegated cgroup: exit %d, want 0 and why\n%s%s", r.code, r.out, r.err)
	}

	d := delegateToNobody(t, host, cgParent+"/nobody")
	args, in := []string{"run", "--rootless", "--memory", "7M", "--cgroup-parent", d.parent}, ""
	if host.MemoryVersion == 2 {
		args, in = []string{"run", "--rootless", "--memory", "7M"}, d.dirs[0]
	}
	r = asNobodyIn(t, home, wd, in, append(args, hog...)...)
	if r.code != 137 || !strings.Contains(r.err, "memory limit 7.0 MiB in "+d.dirs[0]+"/") || !strings.Contains(r.err, ", delegated to you") {
		t.Fatalf("in a delegated cgroup: exit %d, want 137 in a cgroup below %s\n%s%s", r.code, d.dirs[0], r.out, r.err)
	}
	m := regexp.MustCompile(`OOM killer ended .* \(oom_kill = (\d+)\)`).FindStringSubmatch(r.err)
	if m == nil || m[1] == "0" {
		t.Errorf("no OOM kill counted in the run's cgroup:\n%s", r.err)
	}
	if host.MemoryVersion == 2 {
		// memory.events counts the whole subtree: the delegated cgroup's own.
		b, _ := os.ReadFile(filepath.Join(d.dirs[0], "memory.events"))
		if m := regexp.MustCompile(`(?m)^oom_kill (\d+)$`).FindStringSubmatch(string(b)); m == nil || m[1] == "0" {
			t.Errorf("the delegated cgroup's memory.events counts no OOM kill:\n%s", b)
		}
	}
	if left := d.left(); len(left) > 0 {
		t.Errorf("cgroups left below the delegated one: %v", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(wd, "runs")); len(ents) > 0 {
		t.Errorf("runs left: %v", ents)
	}

	if host.MemoryVersion == 1 {
		// Only memory delegated: no task limit then, said when one was
		// asked for, and no error.
		for _, dir := range d.dirs[1:] {
			if err := syscall.Rmdir(dir); err != nil {
				t.Fatal(err)
			}
		}
		d.dirs = d.dirs[:1]
		r = asNobodyIn(t, home, wd, "", "run", "--rootless", "--cgroup-parent", d.parent, "--pids", "64", "--", "/bin/busybox", "true")
		if r.code != 0 || !strings.Contains(r.err, ", delegated to you") || !strings.Contains(r.err, "No task limit: the pids controller is not delegated to you.") {
			t.Errorf("only memory delegated: exit %d\n%s%s", r.code, r.out, r.err)
		}
	}

	// A --cgroup-parent that is not the user's: one line, exit 2, nothing
	// made; the default's name given on the command line too (walkthrough
	// 8: "--cgroup-parent underhood" ran without limits, exit 0).
	for _, p := range []string{cgParent, cgroup.DefaultParent} {
		r = asNobodyIn(t, home, wd, "", "run", "--rootless", "--cgroup-parent", p, "--", "/bin/busybox", "true")
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || !strings.Contains(r.err, "is not delegated to you") {
			t.Errorf("--cgroup-parent %s, root's: exit %d, %q; want exit 2 and one line", p, r.code, r.err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(wd, "runs")); len(ents) > 0 {
		t.Errorf("runs left: %v", ents)
	}
	d.remove(t)
	assertClean(t)
}
