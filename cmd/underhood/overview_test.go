package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/inspect"
	"github.com/underhood/underhood/lab/proc"
)

// lsnsTypes are the namespace types, as lsns names them; the test's own
// list, so that one dropped from the code is missed here.
var lsnsTypes = []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}

// nsRow is one namespace as a tool lists it.
type nsRow struct {
	Type    string
	NProcs  int
	PID     int
	Command string
}

func (r nsRow) String() string {
	return fmt.Sprintf("%s: %d processes from PID %d (%s)", r.Type, r.NProcs, r.PID, r.Command)
}

// sameCommand compares underhood's command with lsns's: underhood shows a
// process without a command line (a kernel thread, a zombie) as ps does,
// [comm], and lsns as comm.
func sameCommand(uh, ls string) bool { return uh == ls || uh == "["+ls+"]" }

// lsnsRows is lsns's list by inode.
func lsnsRows(t *testing.T) map[uint64]nsRow {
	t.Helper()
	m := map[uint64]nsRow{}
	for _, e := range lsnsList(t) {
		ino, err1 := strconv.ParseUint(e.NS.String(), 10, 64)
		n, err2 := e.NProcs.Int64()
		pid, err3 := e.PID.Int64()
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("lsns: an entry not made of numbers: %+v", e)
		}
		m[ino] = nsRow{e.Type, int(n), int(pid), e.Command}
	}
	return m
}

// overviewRows is underhood's host overview (inspect --json) by inode.
func overviewRows(t *testing.T) (*inspect.Overview, map[uint64]nsRow) {
	t.Helper()
	r := runUH(t, "inspect", "--json")
	var ov inspect.Overview
	if err := json.Unmarshal([]byte(r.out), &ov); r.code != 0 || err != nil {
		t.Fatalf("inspect --json: exit %d, %v\n%s%s", r.code, err, r.out, r.err)
	}
	m := map[uint64]nsRow{}
	for _, n := range ov.Namespaces {
		if _, dup := m[n.Inode]; dup {
			t.Errorf("inspect --json lists namespace %d twice", n.Inode)
		}
		m[n.Inode] = nsRow{n.Type, n.NProcs, n.PID, n.Command}
	}
	return &ov, m
}

// near says whether a count n read between two reads of another tool that
// counted a and b is as close as processes coming and going allow.
func near(n, a, b int) bool {
	lo, hi := min(a, b), max(a, b)
	tol := 5 + hi/10
	return n >= lo-tol && n <= hi+tol
}

// nsTree is a process tree in a fresh namespace of each of the eight
// types: unshare in six of its own (it makes the pid and time ones for its
// child), its child in all eight (PID 1 of the new PID namespace), and that
// one's child, a zombie it never reaps.
type nsTree struct {
	cmd                   *exec.Cmd
	unshare, init, zombie int
}

func startNSTree(t *testing.T) *nsTree {
	t.Helper()
	// sh forks a sleep that ends at once and becomes sleep 60, which never
	// waits for it: the zombie stays until the namespace ends.
	cmd := exec.Command("unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
		"--net", "--user", "--cgroup", "--time", "sh", "-c", "sleep 0 & exec sleep 60")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start unshare: %v", err)
	}
	tr := &nsTree{cmd: cmd, unshare: cmd.Process.Pid}
	t.Cleanup(func() { tr.stop(t) })
	// Until sh has forked the sleep that is now a zombie and its own exec
	// has finished, so that both tools read the same command line.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr.init = onlyChild(tr.unshare)
		tr.zombie = onlyChild(tr.init)
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", tr.init))
		if s, err := proc.Host.Summary(tr.zombie); tr.zombie > 0 && err == nil && s.State == "Z" && string(c) == "sleep\x0060\x00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare: no sleep 60 with a zombie child within 30s (init %d, zombie %d)\n%s", tr.init, tr.zombie, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return tr
}

// stop kills the tree by its PID 1, which unshare waits for; then nothing
// of it is left.
func (tr *nsTree) stop(t *testing.T) {
	if s, err := proc.Host.Summary(tr.init); tr.init > 0 && err == nil && s.PPid == tr.unshare {
		_ = syscall.Kill(tr.init, syscall.SIGKILL)
	}
	done := make(chan error, 1)
	go func() { done <- tr.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = tr.cmd.Process.Kill() // --kill-child takes its child along
		<-done
	}
	for _, pid := range []int{tr.init, tr.zombie} {
		if pid <= 0 {
			continue
		}
		waitFor(t, 30*time.Second, func() bool { _, err := os.Lstat(fmt.Sprintf("/proc/%d", pid)); return err != nil })
	}
}

// onlyChild is the child of pid, 0 while it has none (or several).
func onlyChild(pid int) int {
	if pid <= 0 {
		return 0
	}
	pids, _ := proc.Host.PIDs()
	child := 0
	for _, q := range pids {
		if s, err := proc.Host.Summary(q); err == nil && s.PPid == pid {
			if child != 0 {
				return 0
			}
			child = q
		}
	}
	return child
}

// nsOf reads /proc/PID/ns/TYPE of each type.
func nsOf(t *testing.T, pid string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, typ := range lsnsTypes {
		l, err := os.Readlink("/proc/" + pid + "/ns/" + typ)
		if err != nil {
			t.Fatal(err)
		}
		_, ino, err := proc.ParseNSLink(l)
		if err != nil {
			t.Fatal(err)
		}
		m[typ] = ino
	}
	return m
}

func cmdline(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
}

// The host overview groups and counts namespaces as lsns does, for all
// eight types. The test's own tree (nsTree) has a namespace of each type,
// with counts that tell the types apart: its zombie is counted only in its
// pid and user namespaces, the others the kernel has released. Those eight
// must be exactly as /proc says, in both tools and in two reads of each.
// The host's namespaces, and any other that stayed put between two reads
// of one tool (other tests' containers come and go), must be listed by the
// other tool in between, of the same type and from the same PID, with a
// count as close as processes coming and going allow.
func TestInspectOverviewAgreesWithLsns(t *testing.T) {
	if !asRoot() {
		t.Skip("requires root: reads every process's namespaces (CI runs as root; -short skips it)")
	}
	for _, tool := range []string{"lsns", "unshare", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("requires %s (util-linux, a shell): %v", tool, err)
		}
	}
	if _, err := os.Readlink("/proc/self/ns/time"); err != nil {
		t.Skipf("requires time namespaces (Linux 5.6 or later): %v", err)
	}
	tr := startNSTree(t)

	self, u, s := nsOf(t, "self"), nsOf(t, strconv.Itoa(tr.unshare)), nsOf(t, strconv.Itoa(tr.init))
	want := map[uint64]nsRow{}
	for _, typ := range lsnsTypes {
		w := nsRow{Type: typ, NProcs: 2, PID: tr.unshare, Command: cmdline(t, tr.unshare)}
		ino := u[typ]
		switch typ {
		case "pid", "time":
			// For the child only; the zombie keeps its pid one.
			w = nsRow{Type: typ, NProcs: 1, PID: tr.init, Command: cmdline(t, tr.init)}
			if typ == "pid" {
				w.NProcs = 2
			}
			ino = s[typ]
			if u[typ] != self[typ] || ino == self[typ] {
				t.Fatalf("%s namespaces: test %d, unshare %d, its child %d: want the child's alone new", typ, self[typ], u[typ], ino)
			}
		case "user":
			w.NProcs = 3
			fallthrough
		default:
			if s[typ] != ino || ino == self[typ] {
				t.Fatalf("%s namespaces: test %d, unshare %d, its child %d: want unshare's new, and its child in it", typ, self[typ], ino, s[typ])
			}
		}
		want[ino] = w
	}
	if len(want) != len(lsnsTypes) {
		t.Fatalf("the tree's namespaces %v: want %d, one of each type", want, len(lsnsTypes))
	}

	l1 := lsnsRows(t)
	ov, u1 := overviewRows(t)
	l2 := lsnsRows(t)
	_, u2 := overviewRows(t)
	reads := []struct {
		name string
		rows map[uint64]nsRow
	}{{"lsns", l1}, {"underhood", u1}, {"lsns (again)", l2}, {"underhood (again)", u2}}

	// The tree's own: exactly.
	for _, typ := range lsnsTypes {
		ino := u[typ]
		if typ == "pid" || typ == "time" {
			ino = s[typ]
		}
		w := want[ino]
		for _, r := range reads {
			g, ok := r.rows[ino]
			switch {
			case !ok:
				t.Errorf("%s lists no %s namespace %d; want %v", r.name, typ, ino, w)
			case g != w:
				t.Errorf("%s: namespace %d is %v; want %v", r.name, ino, g, w)
			}
		}
	}

	// The host's: one of each type, all from the PID it names.
	var hostTypes []string
	isHost := map[uint64]bool{}
	for _, n := range ov.Namespaces {
		if !n.Host {
			continue
		}
		isHost[n.Inode] = true
		hostTypes = append(hostTypes, n.Type)
		a, aok := l1[n.Inode]
		b, bok := l2[n.Inode]
		switch {
		case n.PID != ov.Host.PID:
			t.Errorf("host %s namespace %d: from PID %d, but the host's PID is %d", n.Type, n.Inode, n.PID, ov.Host.PID)
		case !aok || !bok:
			t.Errorf("host %s namespace %d: not in both reads of lsns (%v, %v)", n.Type, n.Inode, a, b)
		case a.Type != n.Type || b.Type != n.Type || a.PID != n.PID || b.PID != n.PID || !sameCommand(n.Command, a.Command) || !near(n.NProcs, a.NProcs, b.NProcs):
			t.Errorf("host %s namespace %d: underhood %d processes from PID %d (%s); lsns %v, then %v",
				n.Type, n.Inode, n.NProcs, n.PID, n.Command, a, b)
		}
	}
	slices.Sort(hostTypes)
	all := slices.Sorted(slices.Values(lsnsTypes))
	if !slices.Equal(hostTypes, all) {
		t.Errorf("the host's namespaces are of types %v; want one of each of %v", hostTypes, all)
	}

	// Every other one that stayed put between two reads of one tool.
	for _, c := range []struct{ first, between, then int }{{0, 1, 2}, {1, 2, 3}} {
		first, between, then := reads[c.first], reads[c.between], reads[c.then]
		for ino, a := range first.rows {
			b, ok := then.rows[ino]
			if !ok || a.Type != b.Type || a.PID != b.PID || want[ino] != (nsRow{}) || isHost[ino] {
				continue
			}
			g, ok := between.rows[ino]
			if !ok || g.Type != a.Type || g.PID != a.PID || !near(g.NProcs, a.NProcs, b.NProcs) {
				t.Errorf("namespace %d: %s says %v, then %v; %s in between says %v (listed: %v)", ino, first.name, a, b, between.name, g, ok)
			}
		}
	}
	if t.Failed() {
		t.Logf("the tree: unshare %d, its child %d, the zombie %d", tr.unshare, tr.init, tr.zombie)
	}
}
