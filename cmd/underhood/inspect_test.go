package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/inspect"
)

// startRun starts 'underhood run' in the background and waits until its
// payload runs; it returns the command and the payload's host PID.
func startRun(t *testing.T, name string, argv ...string) (*exec.Cmd, *syncBuffer, int) {
	t.Helper()
	return startRunWith(t, name, nil, argv...)
}

// startRunWith is startRun with more flags for run.
func startRunWith(t *testing.T, name string, flags []string, argv ...string) (*exec.Cmd, *syncBuffer, int) {
	t.Helper()
	args := append(append([]string{"--workdir", workdir, "run", "--name", name, "--cgroup-parent", cgParent}, flags...), "--")
	args = append(args, argv...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Generous: the VM test emulates its CPU, and a run limited to 0.2
	// CPUs (TestInspectIsolationSideBySide) starts its init at a fifth of
	// that speed; a run that is up ends the wait at once.
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "host PID") })
	m := regexp.MustCompile(`host PID (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no host PID in %q", stderr.String())
	}
	pid, _ := strconv.Atoi(m[1])
	// 'host PID' is said before the init is released: until its exec the
	// run's process is underhood, then underhood-init (its cmdline, root,
	// mounts, threads and privileges not yet the payload's).
	waitFor(t, 60*time.Second, func() bool {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err != nil || !strings.HasPrefix(filepath.Base(exe), "underhood")
	})
	return cmd, stderr, pid
}

// stopRun ends a background run with SIGTERM, as Ctrl-C in its terminal
// would, and waits for it.
func stopRun(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

type lsnsEntry struct {
	NS      json.Number `json:"ns"`
	Type    string      `json:"type"`
	NProcs  json.Number `json:"nprocs"`
	PID     json.Number `json:"pid"`
	Command string      `json:"command"`
}

// lsnsList is every namespace lsns lists, flat: without --list, lsns 2.38
// nests a namespace below that of its first process's parent (the pid and
// time namespaces 'unshare --fork' makes for its child, say), where a
// look at the top level does not find it.
func lsnsList(t *testing.T) []lsnsEntry {
	t.Helper()
	args := []string{"-J", "--list", "-o", "NS,TYPE,NPROCS,PID,USER,COMMAND"}
	out, err := exec.Command("lsns", args...).Output()
	if err != nil {
		t.Fatalf("lsns %s: %v", strings.Join(args, " "), err)
	}
	var doc struct {
		Namespaces []lsnsEntry `json:"namespaces"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("lsns %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return doc.Namespaces
}

// lsns is lsnsList by inode.
func lsns(t *testing.T) map[string]lsnsEntry {
	t.Helper()
	m := map[string]lsnsEntry{}
	for _, e := range lsnsList(t) {
		m[e.NS.String()] = e
	}
	return m
}

func psArgs(t *testing.T) map[int]string {
	t.Helper()
	out, err := exec.Command("ps", "-e", "-ww", "-o", "pid=,args=").Output()
	if err != nil {
		t.Fatalf("ps -e: %v", err)
	}
	m := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		m[pid] = strings.Join(f[1:], " ")
	}
	return m
}

// inspect of a running lab container agrees with lsns, ps and the cgroup
// files read directly.
func TestInspectLabContainer(t *testing.T) {
	needLab(t)
	run, _, pid := startRun(t, "insp", "/bin/busybox", "sleep", "30")
	defer func() { stopRun(t, run); assertClean(t) }()

	r := runUH(t, "inspect", "insp", "--json")
	if r.code != 0 {
		t.Fatalf("inspect --json: exit %d\n%s%s", r.code, r.out, r.err)
	}
	var rep inspect.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.out)
	}
	if rep.Target.PID != pid || rep.Target.Name != "insp" || rep.Exited {
		t.Errorf("target %+v (exited %v), want insp at host PID %d", rep.Target, rep.Exited, pid)
	}

	// Namespaces and process counts, against lsns.
	ls := lsns(t)
	isolated := map[string]bool{}
	for _, n := range rep.Namespaces {
		e, ok := ls[strconv.FormatUint(n.Inode, 10)]
		if !ok || e.Type != n.Type {
			t.Errorf("%s namespace %d: lsns has %+v", n.Type, n.Inode, e)
			continue
		}
		if n.Isolated {
			isolated[n.Type] = true
			if e.NProcs.String() != strconv.Itoa(rep.Processes.ContainerCount) || e.PID.String() != strconv.Itoa(pid) {
				t.Errorf("%s namespace %d: lsns says %s processes from PID %s; inspect %d from PID %d",
					n.Type, n.Inode, e.NProcs, e.PID, rep.Processes.ContainerCount, pid)
			}
		}
	}
	for _, want := range []string{"pid", "mnt", "uts"} {
		if !isolated[want] {
			t.Errorf("the %s namespace is not isolated: %+v", want, rep.Namespaces)
		}
	}
	if len(isolated) != 3 {
		t.Errorf("isolated %v, want pid, mnt and uts only", isolated)
	}

	// PIDs and commands, against ps; NSpid maps the payload to PID 1.
	ps := psArgs(t)
	if rep.Processes.ContainerCount != 1 || len(rep.Processes.List) != 1 {
		t.Fatalf("processes %+v, want the payload alone", rep.Processes)
	}
	p := rep.Processes.List[0]
	if p.HostPID != pid || p.PID != 1 || p.PPID != 0 || p.HostPPID != run.Process.Pid {
		t.Errorf("payload row %+v: want host PID %d, PID 1 inside, parent underhood (%d) outside", p, pid, run.Process.Pid)
	}
	if ps[p.HostPID] != p.Command || p.Command != "/bin/busybox sleep 30" {
		t.Errorf("command %q, ps says %q", p.Command, ps[p.HostPID])
	}
	if rep.Processes.HostCount < 2 {
		t.Errorf("the host sees %d processes", rep.Processes.HostCount)
	}

	// The cgroup, against its files.
	c := rep.Cgroup
	if c == nil {
		t.Fatal("no cgroup section")
	}
	if !strings.Contains(c.Dir, filepath.Join(cgParent, "insp")) || c.ContainerPath != c.HostPath {
		t.Errorf("cgroup %s (%s inside), want the run's cgroup below %s", c.Dir, c.ContainerPath, cgParent)
	}
	if c.LimitBytes != 7340032 {
		t.Errorf("limit %d, want 7340032", c.LimitBytes)
	}
	// Files whose value does not move while the payload sleeps, on v1 and v2.
	stable := map[string]bool{"memory.limit_in_bytes": true, "memory.memsw.limit_in_bytes": true, "memory.failcnt": true, "tasks": true,
		"memory.max": true, "memory.swap.max": true, "cgroup.procs": true}
	seen := 0
	for _, f := range c.Files {
		if !stable[f.Name] {
			continue
		}
		seen++
		b, err := os.ReadFile(filepath.Join(c.Dir, f.Name))
		if err != nil || strings.TrimSpace(string(b)) != f.Value {
			t.Errorf("%s: inspect says %q, the file %q (%v)", f.Name, f.Value, b, err)
		}
	}
	if seen < 3 {
		t.Errorf("only %d of the key files: %+v", seen, c.Files)
	}

	// The filesystem: its root in the run directory, its own proc.
	fsys := rep.Filesystem
	if !strings.HasPrefix(fsys.Root, filepath.Join(workdir, "runs", "insp")) || fsys.Hostname != "insp" {
		t.Errorf("root %q, hostname %q", fsys.Root, fsys.Hostname)
	}
	hasProc := false
	for _, m := range fsys.Mounts {
		hasProc = hasProc || (m.Mountpoint == "/proc" && m.FSType == "proc")
	}
	if !hasProc || fsys.MountCount >= fsys.HostMountCount {
		t.Errorf("mounts %d (host %d): %+v", fsys.MountCount, fsys.HostMountCount, fsys.Mounts)
	}

	// The text says the same, and the host overview marks its namespaces.
	txt := runUH(t, "inspect", "insp")
	for _, want := range []string{"the container sees 1.", "Isolated: mnt, pid, uts (3 of 8)", "7340032"} {
		if !strings.Contains(txt.out, want) {
			t.Errorf("text lacks %q:\n%s", want, txt.out)
		}
	}
	byPID := runUH(t, "inspect", "--pid", strconv.Itoa(pid), "--json")
	var rep2 inspect.Report
	if err := json.Unmarshal([]byte(byPID.out), &rep2); err != nil || rep2.Target.Name != "insp" {
		t.Errorf("--pid %d: %v, target %+v", pid, err, rep2.Target)
	}
	ov := runUH(t, "inspect", "--json")
	var o inspect.Overview
	if err := json.Unmarshal([]byte(ov.out), &o); err != nil {
		t.Fatalf("overview: %v\n%s%s", err, ov.out, ov.err)
	}
	marked := 0
	for _, n := range o.Namespaces {
		if n.LabContainer == "insp" {
			marked++
			if n.PID != pid || n.NProcs != 1 {
				t.Errorf("overview %+v, want PID %d alone", n, pid)
			}
		}
	}
	if marked != 3 {
		t.Errorf("%d namespaces marked insp, want 3", marked)
	}
}

// The article's hog under --watch: usage climbs, the OOM kill is reported,
// and inspect ends by itself when the container does.
func TestInspectWatchHog(t *testing.T) {
	needLab(t)
	// The hog grows in two stages: 2 MB held for two seconds, which the
	// 100 ms snapshots must see, then the 7.5 MB that the OOM killer ends.
	// (In one stage the climb to the kill can fall between two snapshots,
	// and the cgroup is gone before the watch reads its peak: CI saw that.)
	// Its first two seconds are for the watch to start, on an emulated CPU
	// too.
	run, _, _ := startRun(t, "hogw", "/bin/busybox", "sh", "-c", "busybox sleep 2; held=$(busybox head -c 2000000 /dev/urandom); busybox sleep 2; data=$(busybox head -c 7500000 /dev/urandom)")
	defer func() { stopRun(t, run); assertClean(t) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--workdir", workdir, "inspect", "hogw", "--watch=100ms")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("inspect --watch did not end with its target:\n%s", out.String())
	}
	if code := exitCode(err); code != 0 {
		t.Fatalf("inspect --watch: exit %d\n%s%s", code, out.String(), errb.String())
	}
	s := out.String()
	if n := strings.Count(s, "\n=== "); n < 3 {
		t.Errorf("%d snapshots, want several:\n%s", n+1, s)
	}
	if !strings.Contains(s, "target exited: hogw") {
		t.Errorf("no 'target exited':\n%s", s)
	}
	m := regexp.MustCompile(`OOM kill: oom_kill went from (\d+) to (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no OOM kill report:\n%s", s)
	}
	if a, _ := strconv.Atoi(m[1]); a != 0 {
		t.Errorf("oom_kill started at %d", a)
	}
	var usage []int64
	for _, m := range regexp.MustCompile(`(?m)^memory\.(?:usage_in_bytes|current)\s+(\d+)`).FindAllStringSubmatch(s, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		usage = append(usage, n)
	}
	peak := regexp.MustCompile(`peak memory use: (\d+) bytes`).FindStringSubmatch(s)
	if peak != nil {
		n, _ := strconv.ParseInt(peak[1], 10, 64)
		usage = append(usage, n)
	}
	if len(usage) < 2 || maxOf(usage[1:]) <= usage[0]+1<<20 {
		t.Errorf("memory use did not rise by a MiB across snapshots: %v", usage)
	}
	if code := exitCode(run.Wait()); code != 137 {
		t.Errorf("the hog's run: exit %d, want 137", code)
	}
}

func maxOf(v []int64) int64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// Bad input is one line: exit 2 for what is not a PID or an interval,
// exit 1 for a PID or a name with nothing behind it.
// A plain run and one with --isolation full, side by side: the inspector
// shows each one's limits and privileges as the kernel's files say.
func TestInspectIsolationSideBySide(t *testing.T) {
	needLab(t)
	plain, _, _ := startRun(t, "insp-plain", "/bin/busybox", "sleep", "300")
	defer func() { stopRun(t, plain); assertClean(t) }()
	full, _, _ := startRunWith(t, "insp-full", []string{"--isolation", "full", "--pids", "64", "--cpus", "0.2"}, "/bin/busybox", "sleep", "300")
	defer stopRun(t, full)

	// Until its init has become the payload (it has threads of its own
	// and its privileges yet, for a moment on a slow machine such as the
	// VM test's, whose emulated CPU the 0.2-CPU limit slows to a fifth),
	// the run is read again: a minute at most. Its pids.current alone
	// would not do: before underhood-init, the run's process is one task.
	read := func(name string) inspect.Report {
		t.Helper()
		var rep inspect.Report
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r := runUH(t, "inspect", name, "--json")
			rep = inspect.Report{}
			if err := json.Unmarshal([]byte(r.out), &rep); r.code != 0 || err != nil {
				t.Fatalf("inspect %s --json: exit %d, %v\n%s%s", name, r.code, err, r.out, r.err)
			}
			if rep.Cgroup == nil || rep.Cgroup.Limits == nil || rep.Privileges == nil {
				t.Fatalf("inspect %s: no limits or privileges:\n%s", name, r.out)
			}
			// 'host PID' is said before the init is released: the run's
			// process may still be underhood, or underhood-init with its
			// privileges and threads. The payload's is BusyBox.
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", rep.Target.PID))
			if (rep.Cgroup.Limits.PidsCurrent == 1 && strings.TrimSpace(string(comm)) == "busybox") || time.Now().After(deadline) {
				return rep
			}
		}
	}
	p, f := read("insp-plain"), read("insp-full")
	runc := fmt.Sprintf("%016x", caps.Mask(caps.RuncDefault))
	if p.Privileges.CapEff == runc || p.Privileges.NoNewPrivs || p.Privileges.Seccomp != 0 || p.Privileges.Summary != "every capability of root" {
		t.Errorf("plain run's privileges: %+v", p.Privileges)
	}
	if f.Privileges.CapEff != runc || f.Privileges.CapBnd != runc || !f.Privileges.NoNewPrivs || f.Privileges.Seccomp != 2 || f.Privileges.Summary != "runc's default set" {
		t.Errorf("--isolation full's privileges: %+v", f.Privileges)
	}
	for _, c := range []struct {
		rep         inspect.Report
		pids, quota int64
		pidsMaxFile string
	}{{p, 1024, -1, "1024"}, {f, 64, 20000, "64"}} {
		l := c.rep.Cgroup.Limits
		b, err := os.ReadFile(filepath.Join(l.PidsDir, "pids.max"))
		if l.PidsMax != c.pids || l.CPUQuotaUsec != c.quota || err != nil || strings.TrimSpace(string(b)) != c.pidsMaxFile || l.PidsCurrent != 1 {
			t.Errorf("%s: limits %+v; %s/pids.max reads %q (%v)", c.rep.Target.Name, l, l.PidsDir, b, err)
		}
	}
	r := runUH(t, "inspect", "insp-full")
	for _, want := range []string{"Privileges", "effective  " + runc, "runc's default set: CAP_KILL", "no_new_privs 1", "seccomp 2", "Limits", "at most 0.2 CPUs", "1 of at most 64 tasks"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("inspect insp-full lacks %q:\n%s", want, r.out)
		}
	}
}

func TestInspectBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect", "--pid", "abc"}, 2, `--pid "abc": not a process ID`},
		{[]string{"inspect", "--pid", "0"}, 2, "not a process ID"},
		{[]string{"inspect", "--pid", "-4"}, 2, "not a process ID"},
		{[]string{"inspect", "--pid", "99999999"}, 1, "no process 99999999"},
		{[]string{"inspect", "no-such-box"}, 1, "no lab container no-such-box; see 'underhood --workdir " + workdir + " ps'"},
		{[]string{"inspect", "a", "--pid", "3"}, 2, "not both"},
		{[]string{"inspect", "a", "b"}, 2, "takes one NAME"},
		{[]string{"inspect", "--watch", "2s"}, 2, "--watch=2s"},
		{[]string{"inspect", "--watch=0"}, 2, "shortest interval"},
		{[]string{"inspect", "--watch=soon"}, 2, "not an interval"},
		{[]string{"inspect", "--watch", "--section", "cgroup,mounts"}, 2, `--section "mounts": not one of cgroup, processes, namespaces, filesystem, full`},
	} {
		r := runUH(t, c.args...)
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if r.code != c.code || len(lines) != 1 || !strings.Contains(r.err, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", c.args, r.code, r.err, c.code, c.want)
		}
	}
}
