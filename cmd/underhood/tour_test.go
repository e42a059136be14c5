package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/netns/nettest"
	"github.com/underhood/underhood/steps"
)

func TestTourUsage(t *testing.T) {
	for _, c := range [][]string{
		{"tour", "--from", "0"},
		{"tour", "--from", fmt.Sprint(len(steps.All()) + 1)},
		{"tour", "--from", "five"},
		{"tour", "--from"},
		{"tour", "extra"},
	} {
		r := runUH(t, c...)
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if r.code != 2 || len(lines) != 1 || r.err == "" || r.out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q: want exit 2 and one line on stderr", c, r.code, r.out, r.err)
		}
	}
}

// The whole tour, as CI records it: every step shows what it should, the
// hog's exit 137 is no failure, and nothing is left on the machine.
func TestTourNoPause(t *testing.T) {
	needLab(t)
	before := nettest.Take(t)
	defer nettest.Unchanged(t, before)
	r := runUHInNewNet(t, "tour", "--no-pause", "--cgroup-parent", cgParent)
	if r.code != 0 {
		t.Fatalf("tour: exit %d\n%s%s", r.code, r.out, r.err)
	}
	last := len(steps.All())
	for n := 1; n <= last; n++ {
		if !strings.Contains(r.out, fmt.Sprintf("Step %d of %d: ", n, last)) {
			t.Errorf("the tour has no step %d:\n%s", n, r.out)
		}
	}
	for _, want := range []string{
		"The shell way (as in the article):",
		"/proc is empty and ps -A lists nothing",
		"processes. With proc mounted, the chroot sees every process of the host",
		"inside it: the shell, as PID 1, and ps",
		"Exit status 137 = 128 + SIGKILL",
		"as sudo underhood --workdir " + workdir + " inspect tour-",
		"Namespaces",
		"killed at the memory limit: a container",
		"Alone, only lo, down;",
		"Part 2: beyond the article: what real runtimes add",
		"The shell way (as on the page, docs/09-pivot-root.md):",
		"Under chroot the escape read the host's file; under pivot_root it found only the container's root.",
		"The storm stopped at pids.max, the loop was throttled at its quota",
		"Plain root could mount, make a device and escape; with runc's privileges all of it was refused.",
		"run --isolation full.",
		"check 7).",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the tour lacks %q:\n%s", want, r.out)
		}
	}
	if n := strings.Count(r.out, "▶ "); n != last {
		t.Errorf("%d observations, want one per step:\n%s", n, r.out)
	}
	// The banners name what the step shows, not the tour's scripted shell.
	if all := r.out + r.err; strings.Contains(all, `Step 3: /bin/busybox sh -c echo`) || !strings.Contains(all, "Step 3: a BusyBox shell (typing busybox ls /proc") {
		t.Errorf("step 3's banner shows the tour's wrapper, not the command:\n%s", r.err)
	}
	if strings.Contains(r.out, "Not what the tour expected") {
		t.Errorf("a step surprised the tour:\n%s", r.out)
	}
	if strings.Contains(r.err, "[Enter]") {
		t.Errorf("--no-pause paused:\n%s", r.err)
	}
	assertClean(t)
}

// --from starts mid-way; without a terminal the tour never waits.
func TestTourFrom(t *testing.T) {
	needLab(t)
	before := nettest.Take(t)
	defer nettest.Unchanged(t, before)
	r := runUHInNewNet(t, "tour", "--from", "5", "--cgroup-parent", cgParent)
	if r.code != 0 {
		t.Fatalf("tour --from 5: exit %d\n%s%s", r.code, r.out, r.err)
	}
	last := len(steps.All())
	of := func(n int) string { return fmt.Sprintf("Step %d of %d", n, last) }
	if strings.Contains(r.out, of(4)) || !strings.Contains(r.out, of(5)) || !strings.Contains(r.out, of(last)) {
		t.Errorf("tour --from 5 ran the wrong steps:\n%s", r.out)
	}
	if strings.Contains(r.err, "[Enter]") {
		t.Errorf("the tour waited for Enter without a terminal:\n%s", r.err)
	}
	assertClean(t)
}

// --from 8 is Part 2 alone: its banner, steps 8–10 each with what it
// shows, and nothing left.
func TestTourPart2(t *testing.T) {
	needLab(t)
	first := steps.InPart(steps.Beyond)[0].N
	r := runUH(t, "tour", "--no-pause", "--from", fmt.Sprint(first), "--cgroup-parent", cgParent)
	if r.code != 0 {
		t.Fatalf("tour --from %d: exit %d\n%s%s", first, r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "Part 2: beyond the article") || strings.Count(r.out, "▶ ") != len(steps.InPart(steps.Beyond)) ||
		strings.Contains(r.out, "Not what the tour expected") || strings.Contains(r.out, "(as in the article)") {
		t.Errorf("tour --from %d:\n%s", first, r.out)
	}
	assertClean(t)
}
