package proc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func fixture(t *testing.T) Root {
	root := t.TempDir()
	write := func(pid, name, body string) {
		d := filepath.Join(root, pid)
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A command with spaces and parentheses must not shift the fields.
	write("42", "stat", "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
	write("42", "status", "Name:\tsh\nPPid:\t1\nNSpid:\t42\t1\n")
	write("42", "cmdline", "/bin/busybox\x00sh\x00")
	write("7", "stat", "7 (kworker) Z 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0\n")
	write("7", "cmdline", "")
	write("7", "comm", "kworker\n")
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	return Root(root)
}

func TestStartTimeAndSame(t *testing.T) {
	r := fixture(t)
	st, err := r.StartTime(42)
	if err != nil || st != 123456 {
		t.Fatalf("StartTime = %d, %v; want 123456", st, err)
	}
	if !r.Same(42, 123456) || r.Same(42, 1) {
		t.Error("Same does not compare start times")
	}
	if r.Same(7, 99) {
		t.Error("a zombie counts as alive")
	}
	if _, err := r.StartTime(9999); !errors.Is(err, ErrExited) {
		t.Errorf("missing pid: %v", err)
	}
}

func TestNSpidCmdlinePIDs(t *testing.T) {
	r := fixture(t)
	ns, err := r.NSpid(42)
	if err != nil || len(ns) != 2 || ns[1] != 1 {
		t.Errorf("NSpid = %v, %v", ns, err)
	}
	if c, _ := r.Cmdline(42); c != "/bin/busybox sh" {
		t.Errorf("Cmdline = %q", c)
	}
	if c, _ := r.Cmdline(7); c != "[kworker]" {
		t.Errorf("kernel thread Cmdline = %q", c)
	}
	pids, _ := r.PIDs()
	if len(pids) != 2 {
		t.Errorf("PIDs = %v (self is not a pid)", pids)
	}
}
