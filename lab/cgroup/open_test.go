package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewValidates(t *testing.T) {
	h := Host{Root: "/sys/fs/cgroup", Layout: Hybrid, MemoryRoot: "/sys/fs/cgroup/memory", MemoryVersion: 1}
	for _, tc := range []struct{ parent, name, want string }{
		{"underhood", "", `cgroup name "": empty`},
		{"underhood", "..", `cgroup name "..": ".." is not a name`},
		{"underhood", ".", `cgroup name ".": "." is not a name`},
		{"underhood", "a/b", `cgroup name "a/b": contains "/"`},
		{"underhood", strings.Repeat("x", 256), `longer than 255 bytes`},
		{"", "x", `cgroup parent "": component "": empty`},
		{"/underhood", "x", `cgroup parent "/underhood": component "": empty`},
		{"underhood/", "x", `cgroup parent "underhood/": component "": empty`},
		{"underhood/../process_api", "x", `component "..": ".." is not a name`},
		{"process_api", "x", `cgroup parent "process_api": lab cgroups live under "underhood"`},
	} {
		_, err := New(h, tc.parent, tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) = %v, want %q", tc.parent, tc.name, err, tc.want)
		}
	}
	if _, err := New(Host{Root: "/x", Layout: V2}, DefaultParent, "x"); err == nil ||
		err.Error() != "new cgroup x: no memory controller under /x (layout v2)" {
		t.Errorf("New without memory: %v", err)
	}
	m, err := New(h, "underhood/tests", "x")
	if err != nil || m.Path() != "/sys/fs/cgroup/memory/underhood/tests/x" {
		t.Errorf("New(underhood/tests, x) = %v, %v", m, err)
	}
}

func TestOpen(t *testing.T) {
	mem := filepath.Join(t.TempDir(), "memory")
	h := Host{Root: filepath.Dir(mem), Layout: V1, MemoryRoot: mem, MemoryVersion: 1}
	for _, d := range []string{"underhood/run1", "underhood/tests/x", "process_api/abc"} {
		if err := os.MkdirAll(filepath.Join(mem, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(mem, "process_api"), filepath.Join(mem, "underhood", "link")); err != nil {
		t.Fatal(err)
	}

	for _, ok := range []string{
		mem + "/underhood/run1",
		mem + "/underhood/run1/",
		mem + "/underhood/tests/x",
		mem + "/underhood/gone-already", // Remove will treat it as done
	} {
		m, err := Open(h, ok)
		if err != nil {
			t.Errorf("Open(%s): %v", ok, err)
			continue
		}
		if m.Path() != filepath.Clean(ok) {
			t.Errorf("Open(%s).Path() = %s", ok, m.Path())
		}
	}

	for _, tc := range []struct{ path, why string }{
		{mem + "/process_api", "not a lab cgroup"},
		{mem + "/process_api/abc", "not a lab cgroup"},
		{mem + "/underhood", "the lab's parent cgroup itself"},
		{mem, "not in the memory hierarchy"},
		{mem + "/underhood/../process_api", `".." in the path`},
		{mem + "/underhood/run1/../../process_api", `".." in the path`},
		{filepath.Dir(mem) + "/cpu/underhood/x", "not in the memory hierarchy"},
		{"/etc/passwd", "not in the memory hierarchy"},
		{"underhood/run1", "not an absolute path"},
		{"", "not an absolute path"},
		{mem + "/underhood/link", "is a symbolic link"},
		{mem + "/underhood/link/abc", "is a symbolic link"},
		{mem + "/underhoodx/run1", "not a lab cgroup"},
	} {
		_, err := Open(h, tc.path)
		if err == nil {
			t.Errorf("Open(%q) accepted a path outside the lab", tc.path)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.why) || !strings.Contains(msg, "underhood only touches cgroups below "+mem+"/underhood/") {
			t.Errorf("Open(%q) = %q, want the reason %q", tc.path, msg, tc.why)
		}
	}
}

func TestRemoveParent(t *testing.T) {
	mem := t.TempDir()
	h := Host{Root: filepath.Dir(mem), Layout: V1, MemoryRoot: mem, MemoryVersion: 1}
	if removed, err := RemoveParent(h, DefaultParent); removed || err != nil {
		t.Errorf("missing parent: %v, %v", removed, err)
	}
	if err := os.MkdirAll(filepath.Join(mem, "underhood", "run1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if removed, err := RemoveParent(h, DefaultParent); removed || err != nil || !exists(filepath.Join(mem, "underhood", "run1")) {
		t.Errorf("parent in use: %v, %v; want it kept", removed, err)
	}
	if err := os.Remove(filepath.Join(mem, "underhood", "run1")); err != nil {
		t.Fatal(err)
	}
	if removed, err := RemoveParent(h, DefaultParent); !removed || err != nil || exists(filepath.Join(mem, "underhood")) {
		t.Errorf("empty parent: %v, %v; want it removed", removed, err)
	}
	if _, err := RemoveParent(h, "process_api"); err == nil {
		t.Error("RemoveParent(process_api) accepted")
	}
}

// A parent or name that is a control file's name is refused by New and
// Open: a run could be made there, or never removed (issue 10, item 7).
func TestControlFileNamesRefused(t *testing.T) {
	h := Host{MemoryVersion: 1, MemoryRoot: "/sys/fs/cgroup/memory"}
	for _, parent := range []string{"underhood/x/cgroup.procs", "underhood/memory.max", "underhood/pids.max",
		"underhood/cpu.max", "underhood/tasks", "underhood/notify_on_release", "underhood/cgroup.kill"} {
		if _, err := New(h, parent, "run1"); err == nil || !strings.Contains(err.Error(), "control files") {
			t.Errorf("New(parent %q): %v, want it refused", parent, err)
		}
		if _, err := Open(h, "/sys/fs/cgroup/memory/"+parent+"/run1"); err == nil {
			t.Errorf("Open(%q) accepted", parent)
		}
	}
	for _, ok := range []string{"underhood/my.group", "underhood/memory", "underhood/tasks-1"} {
		if _, err := New(h, ok, "run1"); err != nil {
			t.Errorf("New(parent %q): %v", ok, err)
		}
	}
}
