package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
)

// hogTake snapshots the lab container and plays a memory hog: the third
// snapshot finds its cgroup after an OOM kill, the fourth finds it gone.
func hogTake(f *fixture, src Sources) (func() (any, error), *int) {
	calls := 0
	return func() (any, error) {
		calls++
		switch calls {
		case 2:
			f.cgfile("underhood/insp", "memory.usage_in_bytes", "7335936\n")
			f.cgfile("underhood/insp", "memory.max_usage_in_bytes", "7340032\n")
		case 3:
			f.cgfile("underhood/insp", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
		case 4:
			os.RemoveAll(f.proc.Path(4242))
			os.RemoveAll(f.proc.Path(4250))
		}
		return Inspect(src, 4242)
	}, &calls
}

func TestWatchPipedUntilExit(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	take, calls := hogTake(f, src)
	var out bytes.Buffer
	err := watch(context.Background(), ui.Buffers(nil, &out, &out), src, Options{PID: 4242, Watch: time.Millisecond}, take)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if n := strings.Count(s, "=== 2025-03-14 15:09:26.535 ==="); n != 3 || *calls != 4 {
		t.Errorf("%d snapshots in %d calls, want 3 in 4:\n%s", n, *calls, s)
	}
	if !strings.Contains(s, "\n\n=== ") {
		t.Errorf("snapshots are not separated by a blank line:\n%s", s)
	}
	for _, want := range []string{
		"memory.usage_in_bytes      1204224", "memory.usage_in_bytes      7335936",
		"target exited: insp (host PID 4242) is gone.",
		"OOM kill: oom_kill went from 0 to 1: the kernel's OOM killer ended 1 process in its cgroup.",
		"Its cgroup's peak memory use: 7340032 bytes (7.0 MiB), against a limit of 7.0 MiB.",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b") {
		t.Error("escape sequences in piped output")
	}
}

func TestWatchJSONLines(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	take, _ := hogTake(f, src)
	var out bytes.Buffer
	if err := watch(context.Background(), ui.Buffers(nil, &out, &out), src, Options{PID: 4242, JSON: true, Watch: time.Millisecond}, take); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 snapshots and the exit:\n%s", len(lines), out.String())
	}
	for _, l := range lines[:3] {
		var r Report
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Target.PID != 4242 {
			t.Errorf("snapshot line %q: %v", l, err)
		}
	}
	var e Exit
	if err := json.Unmarshal([]byte(lines[3]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Event != "target_exited" || e.PID != 4242 || e.OOMKillsBefore != 0 || e.OOMKillsAfter != 1 || e.PeakBytes != 7340032 {
		t.Errorf("exit %+v", e)
	}
	golden(t, "watch-exit.json", f.clean(lines[3]+"\n"))
}

// Ctrl-C (a cancelled context) ends a watch of the host without an error.
func TestWatchStopsOnCancel(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	take := func() (any, error) {
		n++
		if n == 2 {
			cancel()
		}
		return HostOverview(src)
	}
	var out bytes.Buffer
	if err := watch(ctx, ui.Buffers(nil, &out, &out), src, Options{Watch: time.Millisecond}, take); err != nil {
		t.Fatal(err)
	}
	if n != 2 || strings.Count(out.String(), "=== ") != 2 {
		t.Errorf("%d snapshots:\n%s", n, out.String())
	}
}

// On a terminal, a view longer than the screen (the host overview, or
// --section full) is cut to it, and says so.
func TestWatchTerminalCutsLongViews(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	for _, opt := range []Options{{Watch: time.Millisecond}, {PID: 4242, Watch: time.Millisecond, Sections: []string{SectionFull}}} {
		ctx, cancel := context.WithCancel(context.Background())
		take := func() (any, error) {
			cancel()
			if opt.PID == 0 {
				return HostOverview(src)
			}
			return Inspect(src, opt.PID)
		}
		var out bytes.Buffer
		o := &ui.IO{Out: &out, Err: &out, OutTTY: true, Width: 80, Height: 12}
		if err := watch(ctx, o, src, opt, take); err != nil {
			t.Fatal(err)
		}
		// The line that ends a watch stopped by Ctrl-C is not the frame's.
		frame := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(out.String(), clearScreen), "\n"), clearBelow)
		checkScreen(t, frame, 80, 12)
		if !strings.Contains(frame, "more lines: a taller terminal shows them") {
			t.Errorf("%+v: a cut view does not say so:\n%s", opt, frame)
		}
	}
}

// On a terminal the first snapshot clears the screen and each later one
// redraws in place, a compact view that fits 80×24.
func TestWatchTerminalRedraws(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	take, _ := hogTake(f, src)
	var out bytes.Buffer
	o := &ui.IO{Out: &out, Err: &out, OutTTY: true, Width: 80, Height: 24}
	if err := watch(context.Background(), o, src, Options{PID: 4242, Watch: time.Millisecond}, take); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, clearScreen) != 1 || !strings.HasPrefix(s, clearScreen) || strings.Count(s, clearBelow) != 3 || strings.Contains(s, "=== ") {
		t.Errorf("want one clear and two redraws in place:\n%q", s)
	}
	if !strings.Contains(s, "every 1ms, 2025-03-14 15:09:26.535; q or Ctrl-C stops") {
		t.Errorf("no header:\n%s", s)
	}
	frames := strings.Split(strings.TrimPrefix(s, clearScreen), clearBelow)
	last := frames[2]
	for _, want := range []string{"cgroup /underhood/insp (memory, cgroup v1)", "memory.oom_control         oom_kill_disable 0, under_oom 0, oom_kill 1",
		"memory.usage_in_bytes      7.0 MiB (7335936)", "Processes: 2 in its PID namespace (the host sees 6)", "  mnt     isolated          4026532180"} {
		if !strings.Contains(last, want) {
			t.Errorf("the last frame lacks %q:\n%s", want, last)
		}
	}
	for i, fr := range frames[:3] {
		checkScreen(t, fr, 80, 24)
		if i > 0 && !strings.HasPrefix(fr, cursorHome) {
			t.Errorf("frame %d does not start at home: %q", i, fr[:min(len(fr), 20)])
		}
	}
	if !strings.Contains(frames[3], "target exited: insp (host PID 4242) is gone.") {
		t.Errorf("no exit report after the last frame:\n%s", frames[3])
	}
}

// checkScreen asserts a frame fits a terminal: fewer lines than its height
// (the cursor keeps the last) and no line wider than it.
func checkScreen(t *testing.T, frame string, width, height int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
	if len(lines) > height-1 {
		t.Errorf("a frame of %d lines on a terminal of %d:\n%s", len(lines), height, frame)
	}
	for _, l := range lines {
		if w := ui.Width(l); w > width {
			t.Errorf("a line %d wide on a terminal of %d: %q", w, width, l)
		}
	}
}

// Many processes and a small terminal: the list is cut to the space left,
// and says how many more there are; --section picks what is shown.
func TestCompactFitsAndPicks(t *testing.T) {
	f := hybridLab(t)
	r, err := Inspect(f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		r.Processes.List = append(r.Processes.List, Process{HostPID: 5000 + i, PID: 3 + i, Command: "busybox sleep " + strings.Repeat("9", 90)})
	}
	for _, size := range [][2]int{{80, 24}, {120, 35}, {60, 20}} {
		var out bytes.Buffer
		o := &ui.IO{Out: &out, Err: &out, OutTTY: true, Color: true, Width: size[0], Height: size[1]}
		WriteCompact(o, r, watchSections, size[1])
		checkScreen(t, "header\n"+out.String(), size[0], size[1])
		if size[1] > 20 && !strings.Contains(out.String(), "more") {
			t.Errorf("%v: 42 processes, and no '… and N more':\n%s", size, out.String())
		}
	}
	var out bytes.Buffer
	WriteCompact(ui.Buffers(nil, &out, &out), r, []string{SectionNamespaces}, 1<<30)
	if s := out.String(); strings.Contains(s, "cgroup /") || strings.Contains(s, "Processes") || !strings.Contains(s, "Namespaces: 3 of 8 isolated") {
		t.Errorf("--section namespaces:\n%s", s)
	}
	if err := CheckSections([]string{"cgroup", "mounts"}); err == nil || err.Error() != `section "mounts": not one of cgroup, processes, namespaces, filesystem, full` {
		t.Errorf("CheckSections: %v", err)
	}
}

// Piped, a watch with --section prints the compact view once per tick,
// each under its timestamp.
func TestWatchPipedSections(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	take, _ := hogTake(f, src)
	var out bytes.Buffer
	if err := watch(context.Background(), ui.Buffers(nil, &out, &out), src, Options{PID: 4242, Watch: time.Millisecond, Sections: []string{SectionCgroup}}, take); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "=== ") != 3 || strings.Count(s, "cgroup /underhood/insp (memory, cgroup v1)") != 3 || strings.Contains(s, "Namespaces") || strings.Contains(s, "\x1b") {
		t.Errorf("piped --section cgroup:\n%s", s)
	}
}

// A target that is gone before the first snapshot is an error, not a watch.
func TestWatchNoProcess(t *testing.T) {
	f := hybridLab(t)
	var out bytes.Buffer
	err := Run(context.Background(), ui.Buffers(nil, &out, &out), f.hybridSources(), Options{PID: 99999, Watch: time.Millisecond})
	if err == nil || err.Error() != "no process 99999" {
		t.Errorf("%v, want no process 99999", err)
	}
}

// The pidfd watcher reads the cgroup's counters the moment its process
// exits, before anyone can remove the cgroup.
func TestWatchExitReadsCountersAtOnce(t *testing.T) {
	f := newFixture(t, cgroup.V1)
	f.cgfile("box", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	f.cgfile("box", "memory.max_usage_in_bytes", "7340032\n")
	cmd := exec.Command("sleep", "0.1")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	st, err := proc.Host.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Target: Target{PID: pid, StartTime: st}, Cgroup: &Cgroup{Version: 1, Dir: filepath.Join(f.cg.MemoryRoot, "box")}}
	ch := watchExit(context.Background(), Sources{Proc: proc.Host}, r)
	if ch == nil {
		t.Skip("no pidfd_open on this kernel")
	}
	select {
	case c := <-ch:
		if c.kills != 3 || c.peak != 7340032 {
			t.Errorf("counters %+v, want 3 kills and a peak of 7340032", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit seen")
	}
}

// A runtime that removes the cgroup the moment its last process dies takes
// the oom_kill counter with it: the kernel log still has the kill.
func TestWatchOOMFromKernelLog(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	src.KernelLog = filepath.Join(f.dir, "kmsg")
	f.write(src.KernelLog, "6,1,100,-;an old line\n3,2,200,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/underhood/insp,task=busybox,pid=1,uid=0\n")
	calls := 0
	take := func() (any, error) {
		calls++
		if calls == 2 {
			log, err := os.OpenFile(src.KernelLog, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			log.WriteString("3,3,300,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/underhood/insp,task_memcg=/underhood/insp,task=busybox,pid=4242,uid=0\n" +
				" SUBSYSTEM=memory\n" +
				"3,4,301,-;Memory cgroup out of memory: Killed process 4242 (busybox) total-vm:15072kB\n" +
				"3,5,302,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/underhood/insp2,task=busybox,pid=5000,uid=0\n")
			log.Close()
			os.RemoveAll(filepath.Join(f.cg.MemoryRoot, "underhood"))
			os.RemoveAll(f.proc.Path(4242))
			os.RemoveAll(f.proc.Path(4250))
		}
		return Inspect(src, 4242)
	}
	var out bytes.Buffer
	if err := watch(context.Background(), ui.Buffers(nil, &out, &out), src, Options{PID: 4242, JSON: true, Watch: time.Millisecond}, take); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var e Exit
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.OOMKillsBefore != 0 || e.OOMKillsAfter != 1 || e.OOMKillsFrom != "kernel_log" {
		t.Errorf("exit %+v, want 0 to 1 from the kernel log (the line from before the watch not counted)", e)
	}
}
