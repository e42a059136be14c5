package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/lab/ui/ptytest"
	"github.com/underhood/underhood/steps"
)

// The pty tests run the real binary on a pseudo-terminal with colour on,
// at the two sizes the workshop is tried at, and assert on the screen a
// person sees.
var sizes = [][2]int{{80, 24}, {120, 35}}

// ptyWorkdir is the prepared lab when the root tests can use it, else an
// empty one (the tables are then those of a fresh machine).
func ptyWorkdir(t *testing.T) string {
	if os.Geteuid() == 0 && labErr == nil {
		return workdir
	}
	return t.TempDir()
}

func ptyRun(t *testing.T, cols, rows int, args ...string) *ptytest.Term {
	t.Helper()
	tm := ptytest.Start(t, cols, rows, exec.Command(binary, args...))
	if code := tm.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("underhood %s: exit %d\n%s", strings.Join(args, " "), code, tm.Dump())
	}
	return tm
}

// 'steps' in colour: columns aligned as seen, nothing past the right edge.
func TestPtySteps(t *testing.T) {
	wd := ptyWorkdir(t)
	for _, sz := range sizes {
		tm := ptyRun(t, sz[0], sz[1], "--workdir", wd, "steps")
		screen := tm.Screen()
		ptytest.CheckColumns(t, screen, "STEP", "TITLE", "COMMAND", "STATE")
		tm.CheckFits(t)
		if !strings.Contains(tm.Raw(), "\x1b[") || !anyColoured(tm) {
			t.Errorf("%v: no colour on a terminal:\n%s", sz, tm.Dump())
		}
	}
}

// 'doctor' in colour, at both sizes. Its table is longer than 24 rows, so
// the columns are checked on everything it wrote.
func TestPtyDoctor(t *testing.T) {
	wd := ptyWorkdir(t)
	for _, sz := range sizes {
		cmd := exec.Command(binary, "--workdir", wd, "doctor")
		cmd.Env = ptytest.Env("PAGER=cat") // the whole table, to check (paging: TestPtyExplainIsPaged)
		tm := ptytest.Start(t, sz[0], sz[1], cmd)
		tm.Wait(t, 60*time.Second) // 1 when this machine lacks something: still a table
		ptytest.CheckColumns(t, tm.RawLines(), "CHECK", "STATUS", "DETAIL")
		tm.CheckFits(t)
		if !anyColoured(tm) {
			t.Errorf("%v: no colour on a terminal:\n%s", sz, tm.Dump())
		}
	}
}

func anyColoured(tm *ptytest.Term) bool {
	for y := 0; y < tm.Rows; y++ {
		if tm.Coloured(y) {
			return true
		}
	}
	return false
}

// 'inspect --watch' of a running container redraws within one screen at
// 80×24 and 120×35, and Ctrl-C ends it; the container is then left to end
// and clean up after itself, and nothing of it is left.
func TestPtyInspectWatch(t *testing.T) {
	needLab(t)
	for _, sz := range sizes {
		name := "ptywatch"
		run := exec.Command(binary, "--workdir", workdir, "run", "--name", name, "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "300")
		run.Env = append(os.Environ(), "NO_COLOR=1")
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- run.Wait() }()
		waitRunning(t, name)

		tm := ptytest.Start(t, sz[0], sz[1], exec.Command(binary, "--workdir", workdir, "inspect", name, "--watch=200ms"))
		tm.WaitFor(t, "uts ", 10*time.Second)
		time.Sleep(500 * time.Millisecond) // a few redraws
		screen := tm.Screen()
		if !strings.HasPrefix(screen[0], "every 200ms,") {
			t.Errorf("%v: the header is not on the first row:\n%s", sz, tm.Dump())
		}
		// The memory limit's file: memory.max on cgroup v2 (the VM test),
		// memory.limit_in_bytes on v1.
		for _, want := range []string{name + " (host PID", "cgroup /", "memory.max|memory.limit_in_bytes", "Processes: 1 in its PID namespace", "Namespaces: ", "pid     isolated"} {
			if !containsAny(strings.Join(screen, "\n"), strings.Split(want, "|")) {
				t.Errorf("%v: the screen lacks %q:\n%s", sz, want, tm.Dump())
			}
		}
		if rows := tm.Wrapped(); len(rows) > 0 {
			t.Errorf("%v: rows %v ran past the edge:\n%s", sz, rows, tm.Dump())
		}
		if n := strings.Count(tm.Raw(), "\x1b[2J"); n != 1 {
			t.Errorf("%v: the screen was cleared %d times, want once and then redrawn in place", sz, n)
		}
		// Ctrl-C at one size, q (as in a pager) at the other.
		key := map[bool]string{true: "\x03", false: "q"}[sz[0] == 80]
		tm.Send(t, key)
		// Well before the container's sleep ends, which would end the watch too.
		if code := tm.Wait(t, 20*time.Second); code != 0 && (key == "q" || code != 130) {
			t.Errorf("%v: %q: exit %d\n%s", sz, key, code, tm.Dump())
		}
		if !strings.HasSuffix(tm.Raw(), "\n") {
			t.Errorf("%v: after %q the prompt would follow on the watch's last line: output ends %q", sz, key, tail(tm.Raw(), 20))
		}
		_ = run.Process.Signal(os.Interrupt) // by its PID: ours
		select {
		case <-done: // 130: stopped by the interrupt
		case <-time.After(20 * time.Second):
			_ = run.Process.Kill()
			<-done
			t.Error("underhood run did not end on SIGINT")
		}
		assertClean(t)
	}
}

// The host overview on a terminal, at both sizes, with a namespace of each
// type of the test's own: the table's columns line up, every line fits, and
// each of the eight has its row.
func TestPtyInspectOverview(t *testing.T) {
	if !asRoot() {
		t.Skip("requires root: reads every process's namespaces (CI runs as root; -short skips it)")
	}
	for _, tool := range []string{"unshare", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("requires %s (util-linux, a shell): %v", tool, err)
		}
	}
	if _, err := os.Readlink("/proc/self/ns/time"); err != nil {
		t.Skipf("requires time namespaces (Linux 5.6 or later): %v", err)
	}
	tr := startNSTree(t)
	u, s := nsOf(t, strconv.Itoa(tr.unshare)), nsOf(t, strconv.Itoa(tr.init))
	for _, sz := range sizes {
		cmd := exec.Command(binary, "--workdir", ptyWorkdir(t), "inspect")
		cmd.Env = ptytest.Env("PAGER=cat") // taller than the screen: written as it is
		tm := ptytest.Start(t, sz[0], sz[1], cmd)
		if code := tm.Wait(t, 30*time.Second); code != 0 {
			t.Fatalf("%v: inspect: exit %d\n%s", sz, code, tm.Dump())
		}
		lines := tm.RawLines()
		ptytest.CheckColumns(t, lines, "NS", "TYPE", "NPROCS", "PID", "COMMAND", "OWNER")
		tm.CheckFits(t)
		for _, typ := range lsnsTypes {
			ino := u[typ]
			if typ == "pid" || typ == "time" {
				ino = s[typ]
			}
			row := fmt.Sprintf("%d  %-6s  ", ino, typ)
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, row) }) {
				t.Errorf("%v: no row %q:\n%s", sz, row, strings.Join(lines, "\n"))
			}
		}
	}
}

// waitRunning waits until 'ps' lists the run as running.
func waitRunning(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r := runUH(t, "ps")
		for _, l := range strings.Split(r.out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name && strings.Contains(l, "running") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s is not running after 10s", name)
}

// The tour on an 80×24 terminal: step 7 pauses before the host's view and
// before the hog, so that the inspector's part is on one screen; Ctrl-C at
// a pause ends the tour with 130, says how to resume, and leaves nothing.
func TestPtyTourPausesInsideAStop(t *testing.T) {
	needLab(t)
	tm := ptytest.Start(t, 80, 24, exec.Command(binary, "--workdir", workdir, "tour", "--from", "7", "--cgroup-parent", cgParent))
	tm.WaitFor(t, "[Enter] run it: sudo underhood run", 30*time.Second)
	tm.Send(t, "\r")
	tm.WaitFor(t, "[Enter] the host's view", 30*time.Second)
	tm.Send(t, "\r")
	tm.WaitFor(t, "[Enter] hostname, ps and the hog", 30*time.Second)
	screen := strings.Join(tm.Screen(), "\n")
	for _, want := range []string{" (host PID ", "cgroup /", "Processes: 1 in its PID namespace", "/bin/busybox sh", "Namespaces: 3 of 8 isolated", "Filesystem: "} {
		if !strings.Contains(screen, want) {
			t.Errorf("the host's view is not on one screen with its prompt: no %q\n%s", want, tm.Dump())
		}
	}
	tm.Send(t, "\r")
	tm.WaitFor(t, "[Enter] step 8", 30*time.Second)
	if !strings.Contains(strings.Join(tm.Screen(), "\n"), "Killed") {
		t.Errorf("the hog's part of step 7 is not on the screen:\n%s", tm.Dump())
	}
	tm.Send(t, "\x03")
	if code := tm.Wait(t, 20*time.Second); code != 130 {
		t.Errorf("Ctrl-C at a pause: exit %d, want 130\n%s", code, tm.Dump())
	}
	if !strings.Contains(tm.Raw(), "tour --from 8')") {
		t.Errorf("Ctrl-C at a pause does not say how to resume:\n%s", tm.Dump())
	}
	assertClean(t)
}

// containsAny reports whether s contains one of alts.
func containsAny(s string, alts []string) bool {
	for _, a := range alts {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// A failed check's hints and verdict wrap at spaces within the terminal
// (the terminal cut "--mount-proc" in two at 80 columns before).
func TestPtyCheckHintsFit(t *testing.T) {
	wd := ptyWorkdir(t)
	empty := t.TempDir()
	for _, sz := range sizes {
		cmd := exec.Command(binary, "--workdir", wd, "check", "4", "--rootfs", empty)
		cmd.Env = ptytest.Env("PAGER=cat") // the whole report, to check (paging: TestPtyExplainIsPaged)
		tm := ptytest.Start(t, sz[0], sz[1], cmd)
		if code := tm.Wait(t, 60*time.Second); code != 1 {
			t.Errorf("%v: check 4 of an empty root: exit %d, want 1\n%s", sz, code, tm.Dump())
		}
		if !strings.Contains(tm.Dump(), "What to do:") {
			t.Errorf("%v: no hints:\n%s", sz, tm.Dump())
		}
		tm.CheckFits(t)
	}
}

// --explain, taller than 24 lines, opens in less on a terminal: its first
// screen starts at the title, and q ends it with exit 0. Piped, it is
// written as it is (the docs tests read it so).
func TestPtyExplainIsPaged(t *testing.T) {
	less, err := exec.LookPath("less")
	if err != nil {
		t.Skip("no less on this machine")
	}
	if p, _ := os.Readlink(less); strings.HasSuffix(p, "busybox") {
		t.Skip("BusyBox's less does not read $LESS")
	}
	// chroot --explain, doctor's table (about 45 lines; it exits 1 where
	// this machine lacks something), and a failed check with its hints
	// (walkthrough 4: check 7 mid-script, 31 lines; it exits 1).
	empty := t.TempDir()
	for _, c := range []struct {
		args  []string
		first string
		rows  int
	}{{[]string{"chroot", "--explain"}, "Step 3", 24}, {[]string{"doctor"}, "CHECK", 24},
		{[]string{"check", "4", "--rootfs", empty}, "Step 4", 12}} { // 18 lines: taller than 12
		cmd := exec.Command(binary, append([]string{"--workdir", ptyWorkdir(t)}, c.args...)...)
		for _, e := range ptytest.Env() { // PAGER and LESS unset: the default pager
			if !strings.HasPrefix(e, "PAGER=") && !strings.HasPrefix(e, "LESS=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		tm := ptytest.Start(t, 80, c.rows, cmd)
		tm.WaitFor(t, c.first, 60*time.Second)
		time.Sleep(300 * time.Millisecond)
		screen := tm.Screen()
		if !strings.HasPrefix(screen[0], c.first) {
			t.Errorf("%v: the first row is not %q:\n%s", c.args, c.first, tm.Dump())
		}
		if tm.Exited() {
			t.Errorf("%v: ended without waiting in the pager:\n%s", c.args, tm.Dump())
		}
		tm.Send(t, "q")
		if code := tm.Wait(t, 10*time.Second); code != 0 && (c.args[0] == "chroot" || code != 1) {
			t.Errorf("%v: q in the pager: exit %d\n%s", c.args, code, tm.Dump())
		}
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// Piped into sed or cat on a person's terminal (as page 8 does), the
// tables still fit that terminal: the lines end up on it.
func TestPtyPipedFitsTheTerminal(t *testing.T) {
	wd := ptyWorkdir(t)
	for _, sz := range sizes {
		cmd := exec.Command("sh", "-c", `"$UH" --workdir "$WD" doctor | cat`)
		cmd.Env = append(os.Environ(), "UH="+binary, "WD="+wd)
		tm := ptytest.Start(t, sz[0], sz[1], cmd)
		tm.Wait(t, 60*time.Second) // 1 when this machine lacks something: still a table
		for i, l := range tm.RawLines() {
			if w := ui.Width(l); w > sz[0] {
				t.Errorf("%v: line %d is %d columns wide:\n%s", sz, i+1, w, l)
			}
		}
		ptytest.CheckColumns(t, tm.RawLines(), "CHECK", "STATUS", "DETAIL")
	}
}

// inspect NAME piped through cat on a terminal (page 8): its tables and
// its sentences fit 80 and 120 columns, broken at spaces, not mid-word.
func TestPtyInspectFits(t *testing.T) {
	needLab(t)
	name := "ptyfit"
	run := exec.Command(binary, "--workdir", workdir, "run", "--name", name, "--cgroup-parent", cgParent, "--", "/bin/busybox", "sleep", "20")
	run.Env = append(os.Environ(), "NO_COLOR=1")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = run.Process.Signal(os.Interrupt) // by its PID: ours
		_ = run.Wait()
		assertClean(t)
	}()
	waitRunning(t, name)
	for _, sz := range sizes {
		cmd := exec.Command("sh", "-c", `"$UH" --workdir "$WD" inspect "$N" | cat`)
		cmd.Env = ptytest.Env("UH="+binary, "WD="+workdir, "N="+name)
		tm := ptytest.Start(t, sz[0], sz[1], cmd)
		if code := tm.Wait(t, 30*time.Second); code != 0 {
			t.Fatalf("%v: exit %d\n%s", sz, code, tm.Dump())
		}
		lines := tm.RawLines()
		for i, l := range lines {
			if w := ui.Width(l); w > sz[0] {
				t.Errorf("%v: line %d is %d columns wide:\n%s", sz, i+1, w, l)
			}
		}
		if !strings.Contains(strings.Join(lines, "\n"), "Inside, numbering starts") {
			t.Errorf("%v: the processes sentence is broken mid-word or missing:\n%s", sz, strings.Join(lines, "\n"))
		}
	}
}

// An interactive step on a terminal (step 7's shell) at 80×24: the step's
// line, then what to try, right above the prompt; Ctrl-C at the prompt
// ends nothing but the line; Ctrl-D then leaves with exit status 0 (not
// the 130 of the Ctrl-C), says Next, and nothing is left.
func TestPtyInteractiveStep(t *testing.T) {
	needLab(t)
	name := "ptyshell"
	// Registered before Start, so run after its kill of underhood when
	// the test stops early: what that kill left, cleanup removes.
	t.Cleanup(func() { runUH(nil, "cleanup", "--all") })
	tm := ptytest.Start(t, 80, 24, exec.Command(binary, "--workdir", workdir, "run", "--name", name, "--cgroup-parent", cgParent))
	tm.WaitFor(t, name+":/#", 20*time.Second)
	raw := ui.Strip(tm.Raw())
	step, try := strings.Index(raw, "Step 7: container "+name), strings.Index(raw, "Try busybox hostname")
	if step < 0 || try < step {
		t.Errorf("want the Step 7 line, then the Try line; at %d and %d:\n%s", step, try, tm.Dump())
	}
	tm.Send(t, "busybox hostname\r")
	tm.WaitFor(t, "\n"+name+"\n", 10*time.Second)
	tm.Send(t, "busybox sleep 30\r")
	time.Sleep(300 * time.Millisecond)
	prompts := strings.Count(tm.Raw(), name+":/# ")
	tm.Send(t, "\x03") // ends the sleep, not the shell
	end := time.Now().Add(10 * time.Second)
	for strings.Count(tm.Raw(), name+":/# ") == prompts && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(tm.Raw(), "Cleaned up") || strings.Count(tm.Raw(), name+":/# ") == prompts {
		t.Fatalf("after Ctrl-C, want the shell's prompt again:\n%s", tm.Dump())
	}
	tm.Send(t, "\x04")
	if code := tm.Wait(t, 20*time.Second); code != 0 {
		t.Errorf("Ctrl-D after a Ctrl-C: exit %d, want 0\n%s", code, tm.Dump())
	}
	for _, want := range []string{"Cleaned up", "Next: "} {
		if !strings.Contains(tm.Raw(), want) {
			t.Errorf("no %q after the shell:\n%s", want, tm.Dump())
		}
	}
	tm.CheckFits(t)
	assertClean(t)
}

// The whole tour on an 80×24 terminal, Enter at every pause: what each
// pause follows, from the line after the previous prompt to its own, fits
// one screen, so the instructor's room sees a stop's header and its ▶ line
// together (the walkthrough saw stop headers scroll away).
func TestPtyTourEachPauseFitsAScreen(t *testing.T) {
	needLab(t)
	// The hints as an attendee's tour shows them, without --workdir.
	cmd := exec.Command(binary, "tour", "--cgroup-parent", cgParent)
	cmd.Env = ptytest.Env("UNDERHOOD_HOME="+workdir, "UNDERHOOD_PLAIN_HINTS=1")
	tm := ptytest.Start(t, 80, 24, cmd)
	if prompts := pausesFit(t, tm, 10*time.Minute); prompts < len(steps.All())-1 {
		t.Errorf("the tour paused %d times, fewer than once between each of its %d stops", prompts, len(steps.All()))
	}
	assertClean(t)
}

// The steps whose output is taller than 24 rows wait for Enter between
// their parts on a terminal, and each part fits the screen (walkthrough
// 3: the "before" half of privileges, network and image scrolled away).
func TestPtyLongStepsPause(t *testing.T) {
	needLab(t)
	for _, step := range []string{"privileges", "network", "image"} {
		t.Run(step, func(t *testing.T) {
			tm := ptytest.Start(t, 80, 24, exec.Command(binary, "--workdir", workdir, step, "--cgroup-parent", cgParent))
			if n := pausesFit(t, tm, 3*time.Minute); n == 0 {
				t.Errorf("%s did not pause on a terminal", step)
			}
			assertClean(t)
		})
	}
	// --no-pause, and piped output, never wait.
	r := runUH(t, "privileges", "--no-pause", "--cgroup-parent", cgParent)
	if r.code != 0 || strings.Contains(r.err, "[Enter]") {
		t.Errorf("privileges --no-pause: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// pausesFit presses Enter at every "[Enter]" prompt of the command on tm
// until it exits with 0, and checks that the rows shown since the previous
// prompt, up to and with this one, fit the terminal. It returns the number
// of prompts.
func pausesFit(t *testing.T, tm *ptytest.Term, d time.Duration) int {
	t.Helper()
	start, prompts := 0, 0
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && !tm.Exited() {
		lines := tm.RawLines()
		last := lines[len(lines)-1]
		// A prompt too long for one line has its reminder under it.
		if n := len(lines); strings.HasPrefix(strings.TrimSpace(last), "(Ctrl-C ends the tour)") && n > 1 && strings.HasPrefix(lines[n-2], "[Enter] ") {
			last = lines[n-2] + " " + last
		}
		if !strings.HasPrefix(last, "[Enter] ") || len(lines)-1 < start {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		used := 0
		for _, l := range lines[start:] {
			used += max(1, (ui.Width(l)+tm.Cols-1)/tm.Cols)
		}
		if used > tm.Rows {
			t.Errorf("%d rows before the pause %q, more than the terminal's %d:\n%s", used, last, tm.Rows, strings.Join(lines[start:], "\n"))
		}
		prompts++
		start = len(lines)
		tm.Send(t, "\r")
	}
	if code := tm.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d after %d pauses\n%s", code, prompts, tm.Dump())
	}
	return prompts
}

// Ctrl-C during a step's scripted demo stops the step: underhood gets it
// with the demo (walkthrough 15: the demo had the terminal to itself, the
// bomb's children died of the Ctrl-C, and the step went on to its busy
// loop), exits 130 and leaves nothing.
func TestPtyCtrlCStopsAStep(t *testing.T) {
	needLab(t)
	tm := ptytest.Start(t, 80, 24, exec.Command(binary, "--workdir", workdir, "limits", "--cgroup-parent", cgParent))
	tm.WaitFor(t, "fork bomb", time.Minute)
	time.Sleep(500 * time.Millisecond) // the bomb is going
	tm.Send(t, "\x03")
	if code := tm.Wait(t, 30*time.Second); code != 130 {
		t.Errorf("limits after Ctrl-C: exit %d, want 130\n%s", code, tm.Dump())
	}
	if s := tm.Raw(); strings.Contains(s, "busy loop") {
		t.Errorf("limits went on after Ctrl-C:\n%s", tm.Dump())
	}
	assertClean(t)
}
