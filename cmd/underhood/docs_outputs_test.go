package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/netns/nettest"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/guide"
)

const docsDir = "../../docs"

// Every command of the guide that shows its output still runs, in a fresh
// lab, and prints what the page says it prints.
func TestDocsOutputs(t *testing.T) {
	needLab(t)
	before := nettest.Take(t)
	defer nettest.Unchanged(t, before)
	var notes bytes.Buffer
	stale, err := guide.Outputs(ui.Buffers(nil, &notes, &notes), binary, docsDir, true)
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
