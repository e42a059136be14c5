package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Step 3: after chroot there is no proc, so ls /proc and ps show nothing.
func TestChrootSeesEmptyProc(t *testing.T) {
	needLab(t)
	r := runUH(t, "chroot", "--", "/bin/busybox", "sh", "-c",
		"echo proc:; busybox ls -A /proc; echo ps:; busybox ps -A 2>/dev/null; echo root:; busybox ls /")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	proc := between(r.out, "proc:\n", "ps:\n")
	ps := between(r.out, "ps:\n", "root:\n")
	if strings.TrimSpace(proc) != "" {
		t.Errorf("/proc inside chroot is not empty: %q", proc)
	}
	if regexp.MustCompile(`(?m)^\s*\d+\s`).MatchString(ps) {
		t.Errorf("ps inside chroot lists processes: %q", ps)
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys"} {
		if !strings.Contains(after(r.out, "root:\n"), d) {
			t.Errorf("ls / inside chroot lacks %s: %q", d, r.out)
		}
	}
	if !strings.Contains(r.err, "chrooted into") {
		t.Errorf("no line saying what isolation the payload has: %q", r.err)
	}
	assertClean(t)
}

// Step 4: with proc mounted, ps in the chroot sees the host's processes,
// and the host's mount table does not change.
func TestMountProcSeesHostProcesses(t *testing.T) {
	needLab(t)
	before, _ := os.ReadFile("/proc/self/mountinfo")
	r := runUH(t, "mount-proc", "--", "/bin/busybox", "sh", "-c", "busybox ps -A")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	n := countPIDLines(r.out)
	host := len(hostPIDs())
	if n < 10 || n < host/2 {
		t.Errorf("ps in the chroot lists %d processes, the host has %d: want the host's processes\n%s", n, host, r.out)
	}
	if !regexp.MustCompile(`(?m)^\s*1\s`).MatchString(r.out) {
		t.Errorf("the host's PID 1 is not listed:\n%s", r.out)
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(after), workdir) || len(strings.Split(string(after), "\n")) != len(strings.Split(string(before), "\n")) {
		t.Errorf("the host's mount table changed")
	}
	assertClean(t)
}

// Step 5: in the PID namespace the payload is PID 1 and alone; the host
// sees it under another PID.
func TestUnsharePIDOne(t *testing.T) {
	needLab(t)
	r := runUH(t, "unshare", "--", "/bin/busybox", "sh", "-c", "echo pid=$$; exec busybox ps -A")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "pid=1\n") {
		t.Errorf("the shell is not PID 1:\n%s", r.out)
	}
	if n := countPIDLines(r.out); n != 1 {
		t.Errorf("ps in the PID namespace lists %d processes, want 1 (itself):\n%s", n, r.out)
	}
	m := regexp.MustCompile(`as PID (\d+)`).FindStringSubmatch(r.err)
	if m == nil {
		t.Fatalf("no host PID printed: %q", r.err)
	}
	if hp, _ := strconv.Atoi(m[1]); hp <= 1 {
		t.Errorf("host PID %d: want the host's own number for the shell", hp)
	}
	assertClean(t)
}

// Step 5, seen from the host while it runs: the payload's NSpid maps the
// host PID to 1.
func TestUnshareVisibleFromHost(t *testing.T) {
	needLab(t)
	cmd := exec.Command(binary, "--workdir", workdir, "unshare", "--", "/bin/busybox", "sleep", "30")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var hostPID int
	waitFor(t, 60*time.Second, func() bool {
		m := regexp.MustCompile(`as PID (\d+)`).FindStringSubmatch(stderr.String())
		if m != nil {
			hostPID, _ = strconv.Atoi(m[1])
		}
		return hostPID > 0
	})
	waitFor(t, 60*time.Second, func() bool {
		// The payload's own: the init's cmdline names it too.
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", hostPID))
		return string(c) == "/bin/busybox\x00sleep\x0030\x00"
	})
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPID))
	if !regexp.MustCompile(`(?m)^NSpid:\s+` + strconv.Itoa(hostPID) + `\s+1$`).Match(st) {
		t.Errorf("NSpid of host PID %d does not map to 1:\n%s", hostPID, st)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if code := exitCode(err); code != 143 {
		t.Errorf("after SIGTERM: exit %d, want 143", code)
	}
	assertClean(t)
}

// Step 6: the article's hog is killed by the OOM killer, exit 137, and the
// kernel's counter says so.
func TestCgroupHogIsOOMKilled(t *testing.T) {
	needLab(t)
	r := runUH(t, "cgroup", "--cgroup-parent", cgParent)
	if r.code != 137 {
		t.Fatalf("exit %d, want 137\n%s%s", r.code, r.out, r.err)
	}
	m := regexp.MustCompile(`OOM killer ended .* \(oom_kill = (\d+)\)`).FindStringSubmatch(r.err)
	if m == nil {
		t.Fatalf("no OOM report: %q", r.err)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Errorf("oom_kill = %d, want >= 1", n)
	}
	if !strings.Contains(r.err, "limited to 7340032 bytes") {
		t.Errorf("the default limit is not the article's 7340032 bytes: %q", r.err)
	}
	assertClean(t)
}

// A kill -9 by hand is not an OOM kill.
func TestCgroupKillByHandIsNotOOM(t *testing.T) {
	needLab(t)
	r := runUH(t, "cgroup", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", "kill -9 $$")
	if r.code != 137 {
		t.Fatalf("exit %d, want 137\n%s%s", r.code, r.out, r.err)
	}
	if strings.Contains(r.err, "OOM killer ended") || !strings.Contains(r.err, "not by the OOM killer") {
		t.Errorf("a kill -9 by hand was reported wrongly: %q", r.err)
	}
	assertClean(t)
}

// A payload within the limit exits normally.
func TestCgroupWithinLimit(t *testing.T) {
	needLab(t)
	r := runUH(t, "cgroup", "--cgroup-parent", cgParent, "--memory", "64M", "--", "/bin/busybox", "sh", "-c",
		"x=$(busybox head -c 7500000 /dev/urandom); echo ok")
	if r.code != 0 || !strings.Contains(r.out, "ok") {
		t.Fatalf("exit %d, want 0 with 64M\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// Step 7: the full run — hostname, PID 1, devices, limit — and nothing left.
func TestRunFull(t *testing.T) {
	needLab(t)
	r := runUH(t, "run", "--name", "fulltest", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c",
		"busybox hostname; echo pid=$$; busybox ls /dev; busybox ls /; busybox head -c 16 /dev/urandom | busybox wc -c; busybox cat /proc/self/cgroup")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"fulltest\n", "pid=1\n", "null", "urandom", "zero", "16\n"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	assertClean(t)
}

// Step 7 with the article's hog inside: killed, 137.
func TestRunHogKilled(t *testing.T) {
	needLab(t)
	r := runUH(t, "run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", "data=$(busybox head -c 7500000 /dev/urandom)")
	if r.code != 137 || !strings.Contains(r.err, "OOM killer") {
		t.Fatalf("exit %d, want 137 with an OOM report\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// The payload's exit status becomes underhood's.
func TestExitStatusPassesThrough(t *testing.T) {
	needLab(t)
	for _, step := range []string{"chroot", "unshare", "run"} {
		r := runUH(t, step, "--", "/bin/busybox", "sh", "-c", "exit 42")
		if r.code != 42 {
			t.Errorf("%s: exit %d, want 42\n%s", step, r.code, r.err)
		}
	}
	assertClean(t)
}

// A descriptor that underhood inherits (exec 7</ in the caller's shell)
// never reaches the payload.
func TestLeakedDescriptorNotInPayload(t *testing.T) {
	needLab(t)
	f, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "ls", "/proc/self/fd")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, f} // fd 7
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	fds := strings.Fields(string(out))
	for _, fd := range fds {
		if n, _ := strconv.Atoi(fd); n > 3 { // 3 is ls's own handle on the directory
			t.Errorf("descriptor %s leaked into the payload: %v", fd, fds)
		}
	}
	assertClean(t)
}

// kill -9 of underhood while the payload runs: the payload dies with it,
// and cleanup removes what is left.
func TestKill9ThenCleanup(t *testing.T) {
	needLab(t)
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--name", "killed", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "60")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "host PID") })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := os.Stat(filepath.Join(workdir, "runs", "killed")); err != nil {
		t.Fatalf("the killed run left no journal to clean up from: %v", err)
	}
	ps := runUH(t, "ps")
	if !strings.Contains(ps.out, "killed") || !strings.Contains(ps.out, "stale") {
		t.Errorf("ps does not show the killed run as stale:\n%s", ps.out)
	}
	if in := runUH(t, "inspect", "killed"); in.code != 1 || !strings.Contains(in.err, "is stale") || !strings.Contains(in.err, "sudo underhood --workdir "+workdir+" cleanup killed") {
		t.Errorf("inspect of a stale run: exit %d, stderr %q; want 1 and the cleanup to run", in.code, in.err)
	}
	r := runUH(t, "cleanup", "killed")
	if r.code != 0 || !strings.Contains(r.out, "removed cgroup") {
		t.Fatalf("cleanup: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
	again := runUH(t, "cleanup", "--all")
	if again.code != 0 || !strings.Contains(again.out, "Nothing to clean up") {
		t.Errorf("second cleanup: exit %d\n%s%s", again.code, again.out, again.err)
	}
}

// Two runs with the same name: the second fails fast and touches nothing
// of the first.
func TestSameNameFailsFast(t *testing.T) {
	needLab(t)
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--name", "twin", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "30")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "host PID") })
	r := runUH(t, "run", "--name", "twin", "--cgroup-parent", cgParent, "--", "/bin/busybox", "true")
	// A live run is never called cut short (issue 10, item 10).
	want := fmt.Sprintf("run twin is running (pid %d); pick another --name or wait", cmd.Process.Pid)
	if r.code == 0 || !strings.Contains(r.err, want) || strings.Contains(r.err, "cut short") {
		t.Errorf("second run with the same name: exit %d, %q; want %q", r.code, r.err, want)
	}
	if ps := runUH(t, "ps"); !strings.Contains(ps.out, "running") {
		t.Errorf("the first run is not running any more:\n%s", ps.out)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(cmd.Wait()); code != 130 {
		t.Errorf("after SIGINT: exit %d, want 130", code)
	}
	assertClean(t)
}

// A run name that is taken is called stale only when it is (issue 10,
// item 10): a run being made (no journal yet) or one whose underhood still
// lives is not for cleanup; one whose underhood is gone is.
func TestTakenNameSaysWhy(t *testing.T) {
	needLab(t)
	st, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	start := f[19] // field 22 of /proc/PID/stat
	cases := []struct {
		name, journal, want string
	}{
		{"makingnow", "", "has no journal yet: another underhood may be making it just now"},
		{"ownerlives", fmt.Sprintf(`{"op":"owner","pid":%d,"start":%s}`+"\n", os.Getpid(), start), fmt.Sprintf("run ownerlives is running (pid %d)", os.Getpid())},
		{"ownergone", `{"op":"owner","pid":999999999,"start":1}` + "\n", "it was cut short"},
	}
	for _, c := range cases {
		dir := filepath.Join(workdir, "runs", c.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if c.journal != "" {
			if err := os.WriteFile(filepath.Join(dir, "journal"), []byte(c.journal), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := runUH(t, "run", "--name", c.name, "--cgroup-parent", cgParent, "--", "/bin/busybox", "true")
		if r.code == 0 || !strings.Contains(r.err, c.want) {
			t.Errorf("%s: exit %d, %q; want %q", c.name, r.code, r.err, c.want)
		}
		if c.want != "it was cut short" && strings.Contains(r.err, "cut short") {
			t.Errorf("%s is not stale, but was called cut short: %q", c.name, r.err)
		}
		os.RemoveAll(dir)
	}
	assertClean(t)
}

// Ten runs at once all succeed and all clean up (issue 3); fifty too
// (issue 7): no name or cgroup clashes.
func TestTenRunsAtOnce(t *testing.T)   { manyRuns(t, 10) }
func TestFiftyRunsAtOnce(t *testing.T) { manyRuns(t, 50) }

func manyRuns(t *testing.T, n int) {
	needLab(t)
	var wg sync.WaitGroup
	res := make([]result, n)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = runUH(nil, "run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", "busybox hostname")
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("run %d: exit %d\n%s", i, r.code, r.err)
		}
		seen[strings.TrimSpace(r.out)] = true
	}
	if len(seen) != n {
		t.Errorf("%d runs had %d distinct names: %v", n, len(seen), seen)
	}
	assertClean(t)
}

// Bad input: one line, exit 2, nothing created.
func TestBadInput(t *testing.T) {
	needLab(t)
	// A work directory given through a symbolic link is refused before
	// anything is made (issue 10, item 5): neither the link's target nor a
	// default work directory gets anything.
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// A FIFO as --from was opened and read for ever (issue 10, item 9).
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"download", "--from", fifo},
		{"download", "--from", "/dev/null"},
		{"--workdir", link, "run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "true"},
		{"--workdir", filepath.Join(link, "sub"), "download", "--from", "/bin/busybox"},
		{"--workdir", "", "download", "--from", "/bin/busybox"},
		{"--workdir=", "steps"},
		{"download", "--from", ""},
		{"run", "--cgroup-parent", "", "--", "/bin/busybox", "true"},
		{"run", "--name", "", "--", "/bin/busybox", "true"},
		{"download", "--url", "", "--sha256", strings.Repeat("0", 64)},
		{"cgroup", "--memory", "abc"},
		{"cgroup", "--memory", ""},
		{"cgroup", "--memory", "-1"},
		{"cgroup", "--memory", "0"},
		{"cgroup", "--memory", "1.5.5M"},
		{"cgroup", "--memory", "1K"},
		{"cgroup", "--memory", "99999999999999999999"},
		{"cgroup", "--memory", "8589934591G"}, // just below 8 EiB: was taken, and limits nothing
		{"run", "--memory", "2048G"},
		{"run", "--memory", "abc"},
		{"run", "--name", "a/b"},
		{"run", "--name", ".."},
		{"run", "--cgroup-parent", "../escape"},
		{"cgroup", "--cgroup-parent", "process_api"},
		{"cgroup", "--cgroup-parent", "underhood/x/cgroup.procs"},
		{"run", "--cgroup-parent", "underhood/memory.max"},
		{"run", "--cgroup-parent", "underhood/tasks"},
		{"run", "--cgroup-parent", "underhood/notify_on_release"},
		{"run", "--name", "cpu.max"},
		{"run", "--bogus"},
		{"step", "99"},
		{"cleanup"},
		{"cleanup", "../x"},
	}
	for _, c := range cases {
		r := runUH(t, c...)
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if r.code != 2 || len(lines) != 1 || r.err == "" {
			t.Errorf("%v: exit %d, stderr %q: want exit 2 and one line", c, r.code, r.err)
		}
	}
	if names, _ := os.ReadDir(real); len(names) > 0 {
		t.Errorf("a --workdir through a symbolic link made %v in its target", names)
	}
	assertClean(t)
}

// A rootfs without BusyBox points at step 2.
func TestMissingRootfs(t *testing.T) {
	needLab(t)
	empty := t.TempDir()
	cmd := exec.Command(binary, "--workdir", empty, "chroot")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(out), "sudo underhood --workdir "+empty+" rootfs") {
		t.Errorf("exit %d: %s", exitCode(err), out)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("created %v in the empty work directory", ents)
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	j := strings.Index(s, b)
	if i < 0 || j < i {
		return ""
	}
	return s[i+len(a) : j]
}

func after(s, a string) string {
	if i := strings.Index(s, a); i >= 0 {
		return s[i+len(a):]
	}
	return ""
}

func countPIDLines(s string) int {
	return len(regexp.MustCompile(`(?m)^\s*\d+\s+\S`).FindAllString(s, -1))
}

func hostPIDs() []string {
	m, _ := filepath.Glob("/proc/[0-9]*")
	return m
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A background job of a payload without a PID namespace (steps 3 and 4)
// does not outlive the run.
func TestBackgroundJobDoesNotOutliveRun(t *testing.T) {
	needLab(t)
	devNull(t)
	for _, step := range []string{"chroot", "mount-proc"} {
		r := runUH(t, step, "--", "/bin/busybox", "sh", "-c", "busybox sleep 300 & busybox kill -0 $! && echo alive $!")
		if r.code != 0 || !strings.Contains(r.out, "alive") {
			t.Fatalf("%s: the background job did not start: exit %d\n%s%s", step, r.code, r.out, r.err)
		}
		assertClean(t)
	}
}

// devNull gives the shared root an empty dev/null for the test: BusyBox's
// shell opens it for a background job's stdin (the article's root has an
// empty dev).
func devNull(t *testing.T) {
	t.Helper()
	p := filepath.Join(workdir, "rootfs", "dev", "null")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
}

// --keep keeps the run's directory (and nothing else); cleanup removes it.
func TestRunKeep(t *testing.T) {
	needLab(t)
	r := runUH(t, "run", "--name", "kept", "--keep", "--cgroup-parent", cgParent, "--", "/bin/busybox", "true")
	if r.code != 0 || !strings.Contains(r.err, "cleanup kept") {
		t.Fatalf("exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(workdir, "runs", "kept", "rootfs", "bin", "busybox")); err != nil {
		t.Errorf("--keep did not keep the root: %v", err)
	}
	if ps := runUH(t, "ps", "--json"); !strings.Contains(ps.out, `"state": "exited"`) {
		t.Errorf("ps --json: %s", ps.out)
	}
	if c := runUH(t, "cleanup", "kept"); c.code != 0 || !strings.Contains(c.out, "removed") {
		t.Errorf("cleanup: exit %d %s%s", c.code, c.out, c.err)
	}
	assertClean(t)
}

// cleanup never undoes a run whose underhood is alive; it says how to
// stop it, and the run goes on.
func TestCleanupLeavesLiveRunAlone(t *testing.T) {
	needLab(t)
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--name", "alive", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "30")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "host PID") })
	for _, args := range [][]string{{"cleanup", "alive"}, {"cleanup", "--all"}} {
		r := runUH(t, args...)
		if r.code != 0 || !strings.Contains(r.out, "it is running") || strings.Contains(r.out, "killed") {
			t.Errorf("%v on a live run: exit %d\n%s%s", args, r.code, r.out, r.err)
		}
	}
	if ps := runUH(t, "ps"); !strings.Contains(ps.out, "running") {
		t.Errorf("the live run was disturbed:\n%s", ps.out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(cmd.Wait()); code != 143 {
		t.Errorf("after SIGTERM: exit %d, want 143", code)
	}
	assertClean(t)
}

// A payload that is not there exits 127, one that cannot run 126, as in
// a shell.
func TestSetupFailureExitCodes(t *testing.T) {
	needLab(t)
	for _, c := range []struct {
		argv []string
		code int
		says string
	}{
		{[]string{"no-such-tool"}, 127, "not found in the container's PATH"},
		{[]string{"/bin/nothing"}, 127, "/bin/nothing"},
		{[]string{"/etc"}, 126, "is a directory"},
	} {
		r := runUH(t, append([]string{"chroot", "--"}, c.argv...)...)
		if r.code != c.code || !strings.Contains(r.err, c.says) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.argv, r.code, r.err, c.code, c.says)
		}
	}
	assertClean(t)
}

// kill -9 of underhood during step 3 with a background job: cleanup ends
// the job too (it is in the payload's process group, rooted in the lab).
func TestKill9ChrootBackgroundJobThenCleanup(t *testing.T) {
	needLab(t)
	devNull(t)
	cmd := exec.Command(binary, "--workdir", workdir, "chroot", "--", "/bin/busybox", "sh", "-c",
		"busybox sleep 300 & echo bg=$!; exec busybox sleep 300")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	// A file, not a pipe: the orphaned job keeps its stdout open, and Wait
	// would wait for a pipe's last writer.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Should the test stop early: underhood (ours, by PID) and its run go.
	t.Cleanup(func() { _ = cmd.Process.Kill(); runUH(nil, "cleanup", "--all") })
	// Both sleeps, the job and the payload, rooted in the lab, before the
	// kill (on a slow machine, such as the VM test's, "bg=" comes first).
	processes := func() (n int) {
		for _, l := range leftovers(workdir) {
			if strings.HasPrefix(l, "process ") && strings.Contains(l, "(root in") {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(out.Name())
		return strings.Contains(string(b), "bg=") && processes() >= 2
	})
	before := leftovers(workdir)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if left := leftovers(workdir); !strings.Contains(strings.Join(left, " "), "process") {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("no process was left after kill -9 (only %q; before it: %q; output %q): the test would prove nothing", left, before, b)
	}
	r := runUH(t, "cleanup", "--all")
	if r.code != 0 || !strings.Contains(r.out, "killed process") {
		t.Fatalf("cleanup: exit %d\nout: %q\nerr: %q\nleft: %q", r.code, r.out, r.err, leftovers(workdir))
	}
	assertClean(t)
}

// A job that a payload of steps 3 and 4 (no PID namespace) starts in a
// session of its own outlives a kill -9 of underhood; the run's cgroup
// holds it all the same, so cleanup ends it (issue 10, item 6).
func TestSetsidJobEndsWithCleanup(t *testing.T) {
	needLab(t)
	if null := filepath.Join(workdir, "rootfs", "dev", "null"); unix.Access(null, unix.F_OK) != nil {
		defer os.Remove(null) // made by the payload below
	}
	for _, step := range []string{"chroot", "mount-proc"} {
		t.Run(step, func(t *testing.T) {
			// ash opens /dev/null for a background job; these roots have none.
			script := "[ -e /dev/null ] || /bin/busybox mknod /dev/null c 1 3; " +
				"/bin/busybox setsid /bin/busybox sleep 61 & exec /bin/busybox sleep 60"
			cmd := exec.Command(binary, "--workdir", workdir, step, "--", "/bin/busybox", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "NO_COLOR=1")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			job := 0
			waitFor(t, 60*time.Second, func() bool { job = findProc(workdir, "sleep", "61"); return job > 0 })
			if sid, _ := unix.Getsid(job); sid != job {
				t.Fatalf("the job %d is not in a session of its own (sid %d)", job, sid)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if unix.Kill(job, 0) != nil {
				t.Fatalf("the job %d died with underhood: nothing to show", job)
			}
			if r := runUH(t, "cleanup", "--all"); r.code != 0 {
				t.Fatalf("cleanup --all: exit %d\n%s%s", r.code, r.out, r.err)
			}
			assertClean(t)
		})
	}
}

// findProc finds a process "busybox APPLET ARG" whose root is inside dir.
func findProc(dir, applet, arg string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if root, err := os.Readlink(filepath.Join(p, "root")); err != nil || !strings.HasPrefix(root, dir) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if a := strings.Split(string(b), "\x00"); len(a) > 2 && a[1] == applet && a[2] == arg {
			pid, _ := strconv.Atoi(filepath.Base(p))
			return pid
		}
	}
	return 0
}

// A reader that goes away (underhood ... | head -1) must not kill underhood
// mid-run: a write to the closed pipe is an error it can ignore, not
// SIGPIPE, and the run is cleaned up as always.
func TestClosedPipeLeavesNothing(t *testing.T) {
	needLab(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--name", "pipeclosed", "--cgroup-parent", cgParent, "--",
		"/bin/busybox", "sh", "-c", "echo one; busybox sleep 0.5; echo two; busybox sleep 0.5; echo three")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var b [1]byte
	_, _ = r.Read(b[:]) // the first byte, then the reader is gone
	r.Close()
	code := exitCode(cmd.Wait())
	if code == 128+int(syscall.SIGPIPE) || code == -1 {
		t.Errorf("underhood died of SIGPIPE (exit %d)", code)
	}
	assertClean(t)
}

// cleanup --all leaves a user's directory under runs/ alone and says so
// (issue 10, item 1: it used to delete it, file and all).
func TestCleanupKeepsUsersDirectory(t *testing.T) {
	needLab(t)
	dir := filepath.Join(workdir, "runs", "thesis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "chapter1.txt")
	if err := os.WriteFile(f, []byte("six months of work\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runUH(t, "cleanup", "--all")
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("cleanup --all removed %s: exit %d\n%s%s", f, r.code, r.out, r.err)
	}
	if r.code != 0 || !strings.Contains(r.out, "thesis: not underhood's (it has no journal): left alone") {
		t.Errorf("cleanup --all: exit %d\n%s%s", r.code, r.out, r.err)
	}
	os.RemoveAll(dir)
	assertClean(t)
}

// A FIFO in place of a journal: ps and cleanup --all end, and say what it
// is (issue 10, item 9: both used to hang forever, deaf to Ctrl-C).
func TestFIFOJournalDoesNotHang(t *testing.T) {
	needLab(t)
	dir := filepath.Join(workdir, "runs", "fifo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := syscall.Mkfifo(filepath.Join(dir, "journal"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ps"}, {"cleanup", "--all"}} {
		cmd := exec.Command(binary, append([]string{"--workdir", workdir, "--no-color"}, args...)...)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%v hung on a FIFO for a journal", args)
		}
		if !strings.Contains(string(out), "not underhood's") || cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("%v: exit %d\n%s", args, cmd.ProcessState.ExitCode(), out)
		}
	}
	os.RemoveAll(dir)
	assertClean(t)
}

// cleanup --all in a loop while runs keep starting: it never undoes a
// live run, every run succeeds, nothing is left (issue 10, item 2: a run
// was visible before it was locked, and some runs failed or left their
// cgroup).
func TestCleanupRacesRuns(t *testing.T) {
	needLab(t)
	stop := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	fail := func(s string) { mu.Lock(); fails = append(fails, s); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			if r := runUH(nil, "cleanup", "--all"); r.code != 0 {
				fail(fmt.Sprintf("cleanup --all: exit %d: %s%s", r.code, r.out, r.err))
			}
		}
	}()
	runs := 0
	for ; time.Now().Before(stop); time.Sleep(100 * time.Millisecond) {
		runs++
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runUH(nil, "run", "--cgroup-parent", cgParent, "--memory", "64M", "--", "/bin/busybox", "sleep", "0.3")
			if r.code != 0 || strings.Contains(r.out+r.err, "cleaned") {
				fail(fmt.Sprintf("run: exit %d: %s%s", r.code, r.out, r.err))
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Errorf("%d of %d runs or cleanups failed; first:\n%s", len(fails), runs, fails[0])
	}
	assertClean(t)
}

// newLab prepares a lab of its own (steps 1 and 2 from /bin/busybox) in a
// temporary work directory, for a test that changes it.
func newLab(t *testing.T) string {
	t.Helper()
	wd := filepath.Join(t.TempDir(), "lab")
	for _, args := range [][]string{{"download", "--from", "/bin/busybox"}, {"rootfs"}} {
		if r := runUHIn(t, wd, args...); r.code != 0 {
			t.Fatalf("underhood %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
	return wd
}

// A payload of step 5 replaces the shared root's bin/busybox with a script
// (issue 10, item 3): step 6, which runs on the host as root, runs the
// verified BusyBox instead, says so, and the script never runs; check 2
// fails the root until step 2 puts the real BusyBox back.
func TestCgroupNeverRunsAPlantedBusybox(t *testing.T) {
	needLab(t)
	wd := newLab(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	plant := fmt.Sprintf(`rm /bin/busybox; printf "#!/bin/sh\nid > %s\n" > /bin/busybox; chmod 755 /bin/busybox`, marker)
	if r := runUHIn(t, wd, "unshare", "--", "/bin/busybox", "sh", "-c", plant); r.code != 0 {
		t.Fatalf("the payload could not plant its script: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if b, err := os.ReadFile(filepath.Join(wd, "rootfs", "bin", "busybox")); err != nil || !strings.HasPrefix(string(b), "#!/bin/sh") {
		t.Fatalf("no script planted: %q, %v", b, err)
	}
	r := runUHIn(t, wd, "cgroup", "--cgroup-parent", cgParent)
	if r.code != 137 || !strings.Contains(r.err, "OOM killer") {
		t.Errorf("the hog: exit %d, want 137 and an OOM kill\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.err, "is not the BusyBox that") {
		t.Errorf("no word of the replaced BusyBox:\n%s", r.err)
	}
	r = runUHIn(t, wd, "cgroup", "--cgroup-parent", cgParent, "--memory", "64M", "--", "busybox", "sh", "-c", "busybox echo via-path")
	if r.code != 0 || !strings.Contains(r.out, "via-path") {
		t.Errorf("busybox through PATH: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the planted script ran on the host as root: %s", b)
	}
	if r := runUHIn(t, wd, "check", "2"); r.code != 1 || !strings.Contains(r.out, "not an ELF executable") {
		t.Errorf("check 2 of a root whose busybox is a script: exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	if r := runUHIn(t, wd, "rootfs"); r.code != 0 {
		t.Fatalf("rootfs: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := runUHIn(t, wd, "check", "2"); r.code != 0 {
		t.Errorf("check 2 after rootfs: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertCleanIn(t, wd)
}

// A --workdir that is not underhood's (no marker, a user's files in it)
// is refused with exit 2 by run and cleanup alike, and nothing is made in
// it (issue 10, item 1).
func TestWorkdirNotOursRefused(t *testing.T) {
	needLab(t)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "notes.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "true"},
		{"download", "--from", "/bin/busybox"},
		{"cleanup", "--all"},
	} {
		cmd := exec.Command(binary, append([]string{"--workdir", home, "--no-color"}, args...)...)
		out, _ := cmd.CombinedOutput()
		// run stops earlier still: there is no BusyBox in a directory not underhood's
		says := args[0] == "run" || strings.Contains(string(out), "is not underhood's")
		if code := cmd.ProcessState.ExitCode(); code != 2 || !says {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, out)
		}
	}
	if ents, _ := os.ReadDir(home); len(ents) != 1 {
		t.Errorf("something was made in a directory not underhood's: %v", ents)
	}
	assertClean(t)
}

// A file of a run's root made immutable while the payload runs (what a
// payload with the host's capabilities may do with FS_IOC_SETFLAGS, as
// chattr +i does): the run's own cleanup clears the flag and removes
// everything (issue 10, item 7; before, the run ended with 'operation not
// permitted' and left its directory for good).
func TestRunWithImmutableFileCleansUp(t *testing.T) {
	needLab(t)
	cmd := exec.Command(binary, "--workdir", workdir, "run", "--name", "frozen", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "30")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "host PID") })
	f, err := os.Open(filepath.Join(workdir, "runs", "frozen", "rootfs", "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(fl|0x10)) // FS_IMMUTABLE_FL
	}
	f.Close()
	if err != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		t.Skipf("the work directory's filesystem has no inode flags: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(cmd.Wait()); code != 143 {
		t.Errorf("after SIGTERM: exit %d, want 143\n%s", code, stderr.String())
	}
	assertClean(t)
}
