package ui

import (
	"bytes"
	"strings"
	"testing"
)

// A table too wide for the terminal narrows its columns down to their
// longest word first: the path in DETAIL stays whole while HINT, the
// widest, wraps between words. Only when no column can give way are
// words broken.
func TestTableKeepsWordsWhole(t *testing.T) {
	var out bytes.Buffer
	o := Buffers(nil, &out, &out)
	o.Width = 80
	path := "/sys/fs/cgroup/memory/underhood/doc-12"
	o.Table([]string{"CHECK", "STATUS", "DETAIL", "HINT"}, [][]string{
		{"swap limit", "OK", "memory.memsw.limit_in_bytes = 7340032 in " + path, ""},
		{"memory", "WARN", "no swap accounting", "boot with swapaccount=1 and cgroup_enable=memory on the kernel command line, then reboot and run doctor again"},
	})
	got := out.String()
	for _, word := range []string{path, "memory.memsw.limit_in_bytes", "cgroup_enable=memory"} {
		if !strings.Contains(got, word) {
			t.Errorf("%s was cut:\n%s", word, got)
		}
	}
	for _, l := range strings.Split(strings.TrimRight(got, "\n"), "\n") {
		if Width(l) > 80 {
			t.Errorf("wider than 80: %q", l)
		}
	}
}

// A hint wraps at spaces with a hanging indent on a terminal, and stays one
// line when piped.
func TestHanging(t *testing.T) {
	var out bytes.Buffer
	o := Buffers(nil, &out, &out)
	s := "  lab cgroups: sudo rmdir /sys/fs/cgroup/memory/busybox /sys/fs/cgroup/memory/underhood/stuck, then run the same check again"
	o.Hanging(s, 4)
	if out.String() != s+"\n" {
		t.Errorf("piped: %q", out.String())
	}
	out.Reset()
	o.Width = 50
	o.Hanging(s, 4)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "  lab cgroups:") {
		t.Fatalf("not wrapped:\n%s", out.String())
	}
	for _, l := range lines {
		if Width(l) > 50 {
			t.Errorf("wider than 50: %q", l)
		}
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "     ") {
			t.Errorf("not indented by 4: %q", l)
		}
	}
	// The command, too long for a line, is continued with " \\" as a
	// shell continues one: the text is the same without them.
	if !strings.Contains(out.String(), " \\\n") {
		t.Errorf("the long command is not continued with \\:\n%s", out.String())
	}
	if j := strings.Join(strings.Fields(strings.ReplaceAll(out.String(), " \\\n", " ")), " "); j != strings.TrimSpace(s) {
		t.Errorf("text changed: %q", j)
	}
}
