package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/ui"
)

const docsDir = "../../docs"

// The command reference in docs/cli is what cobra/doc makes of the commands
// today.
func TestDocsCLIReferenceIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	if err := genCLI(tmp); err != nil {
		t.Fatal(err)
	}
	stale, err := diffDirs(tmp, filepath.Join(docsDir, "cli"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("docs/cli is stale; run 'make docs' (or: go run ./cmd/underhood gen-docs --cli docs/cli):\n  %s", strings.Join(stale, "\n  "))
	}
}

// Every underhood command the guide shows, run or not, names a command
// that exists, with flags and arguments it takes.
func TestDocsCommandsParse(t *testing.T) {
	pages, err := docPages(docsDir)
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in %s: %v", docsDir, err)
	}
	n := 0
	for _, p := range append(pages, "../../README.md") {
		bad, err := lintFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Error(b)
		}
		raw, _ := os.ReadFile(p)
		n += len(guideCommands(string(raw)))
	}
	if n < 50 {
		t.Errorf("found only %d underhood commands in the guide: is the parser still finding them?", n)
	}
}

// The lint itself: what it accepts and what it refuses.
func TestDocsLintCommand(t *testing.T) {
	for _, ok := range []string{
		"sudo underhood unshare -- busybox ps -A",
		"underhood check 3 --rootfs ~/container",
		"sudo underhood run --name box1 -- /bin/busybox sh -c 'busybox hostname; busybox ps -A'",
		"sudo underhood step 5 --explain",
		"sudo underhood inspect box1 --watch=500ms",
		"sudo underhood tour --no-pause --from 5 2>/dev/null | less",
		"underhood --workdir /tmp/lab steps",
	} {
		if err := lintCommand(docsTree(), ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"sudo underhood unshar",
		"sudo underhood run --nmae box1",
		"underhood check 9",
		"underhood check",
		"sudo underhood tour --from",
	} {
		if err := lintCommand(docsTree(), bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestDocsParseBlocks(t *testing.T) {
	page := "intro\n<!-- output: sudo underhood steps -->\nold\n<!-- end -->\n" +
		"<!-- output(v1,loose)\n$ cd ~/container\n$ sudo chroot . /bin/busybox sh\n/ # busybox ps -A\n/ # exit\n-->\n```console\n```\n<!-- end -->\n"
	bs, err := parseBlocks("p.md", page)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 {
		t.Fatalf("%d blocks, want 2", len(bs))
	}
	if bs[0].content != "old\n" || len(bs[0].lines) != 1 || bs[0].lines[0].cmd != "sudo underhood steps" {
		t.Errorf("first block: %+v", bs[0])
	}
	b := bs[1]
	if !b.tags["v1"] || !b.tags["loose"] || len(b.lines) != 4 || b.lines[2].prompt != "/ # " || b.lines[2].cmd != "busybox ps -A" || !b.lines[1].host() {
		t.Errorf("second block: %+v", b)
	}
	for _, broken := range []string{
		"<!-- output: underhood steps -->\nno end\n",
		"<!-- output(bogus): underhood steps -->\n<!-- end -->\n",
		"<!-- output\n/ # busybox ls\n-->\n<!-- end -->\n",
	} {
		if _, err := parseBlocks("p.md", broken); err == nil {
			t.Errorf("accepted %q", broken)
		}
	}
}

func TestDocsNormalise(t *testing.T) {
	same := [][2]string{
		{"The host sees this same process as PID 22898 (in another terminal: ps -o pid,args -p 22898).",
			"The host sees this same process as PID 4111 (in another terminal: ps -o pid,args -p 4111)."},
		{"container box-a5903946a0: limit 7.0 MiB, host PID 23006.", "container box-0123456789: limit 7.0 MiB, host PID 99."},
		{"bin/busybox  1.9 MiB, static ELF", "bin/busybox      1.1 MiB,   static ELF"},
		{"Downloaded 1.1 MiB in 0.4s", "Downloaded 1.1 MiB in 12.0s"},
	}
	for _, p := range same {
		if normalise(p[0], false) != normalise(p[1], false) {
			t.Errorf("differ:\n%q\n%q", normalise(p[0], false), normalise(p[1], false))
		}
	}
	same = [][2]string{
		{"    7 0        busybox ps -A", "   10 0        busybox ps -A"},
		{"ended 1 process in the cgroup (oom_kill = 1)", "ended 2 processes in the cgroup (oom_kill = 2)"},
	}
	for _, p := range same {
		if normalise(p[0], false) != normalise(p[1], false) {
			t.Errorf("differ:\n%q\n%q", normalise(p[0], false), normalise(p[1], false))
		}
	}
	differ := [][2]string{
		{"    1 0        busybox ps -A", "    7 0        busybox ps -A"},
		{"oom_kill 0", "oom_kill 1"},
		{"Exit status 137", "Exit status 0"},
		{"pid=1", "pid=2"},
	}
	for _, p := range differ {
		if normalise(p[0], false) == normalise(p[1], false) {
			t.Errorf("the same: %q and %q", p[0], p[1])
		}
	}
	if normalise("81 processes", true) != normalise("140 processes", true) {
		t.Error("loose still counts numbers")
	}
	// ps pads PIDs on the left: a shorter one must not make a difference.
	if normalise("11838 /bin/busybox sleep 3", true) != normalise("  903 /bin/busybox sleep 3", true) {
		t.Error("loose counts the padding of a number")
	}
}

// Every command of the guide that shows its output still runs, in a fresh
// lab, and prints what the page says it prints.
func TestDocsOutputs(t *testing.T) {
	needLab(t)
	var notes bytes.Buffer
	stale, err := pageDocs(ui.Buffers(nil, &notes, &notes), binary, docsDir, true)
	if notes.Len() > 0 {
		t.Log(notes.String())
	}
	if err != nil {
		t.Fatalf("a command of the guide did not run: %v", err)
	}
	for _, s := range stale {
		t.Error(s)
	}
	if len(stale) > 0 {
		t.Log("if the new outputs are right: sudo make docs, then read the diff")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, "/tmp/uhd") || strings.Contains(l, "underhood-docs-") {
			t.Errorf("the guide's commands left a mount: %s", l)
		}
	}
	for _, c := range []string{"/sys/fs/cgroup/memory/busybox", "/sys/fs/cgroup/busybox"} {
		if _, err := os.Stat(c); err == nil {
			t.Errorf("the guide's commands left the cgroup %s", c)
		}
	}
	assertClean(t)
}
