package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeKernel stands in for cgroupfs on a t.TempDir() tree: mkdir populates
// control files, rmdir removes them, kill takes the pid out of every
// cgroup.procs, and time only moves when the driver sleeps.
type fakeKernel struct {
	t       *testing.T
	root    string // the memory hierarchy root
	version int

	noSwap       bool // no memsw / memory.swap.max files (swap accounting off)
	noLimitFile  bool // no memory.limit_in_bytes / memory.max (to make a write fail)
	noCgroupKill bool
	oldOOM       bool // memory.oom_control without the oom_kill line
	unkillable   bool // kill does nothing

	writes     []string       // "rel/path=value" for every control-file write
	rmdirBusy  int            // EBUSY answers before rmdir succeeds
	busyOn     map[string]int // EBUSY answers for one directory
	rmdirCalls int
	killed     []int
	sleeps     []time.Duration
	clock      time.Time
}

func newFakeKernel(t *testing.T, version int) *fakeKernel {
	t.Helper()
	k := &fakeKernel{t: t, root: t.TempDir(), version: version, clock: time.Unix(1e9, 0)}
	if version == 2 {
		write(t, filepath.Join(k.root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n")
		write(t, filepath.Join(k.root, "cgroup.subtree_control"), "")
		write(t, filepath.Join(k.root, "cgroup.procs"), "1\n")
	} else {
		write(t, filepath.Join(k.root, "memory.limit_in_bytes"), "9223372036854771712\n")
		write(t, filepath.Join(k.root, "cgroup.procs"), "1\n")
	}
	return k
}

func (k *fakeKernel) host() Host {
	if k.version == 2 {
		return Host{Root: k.root, Layout: V2, MemoryRoot: k.root, MemoryVersion: 2, Unified: k.root}
	}
	return Host{Root: filepath.Dir(k.root), Layout: V1, MemoryRoot: k.root, MemoryVersion: 1}
}

func (k *fakeKernel) ops() sysOps {
	return sysOps{
		write: k.write,
		mkdir: func(p string, perm os.FileMode) error {
			if err := os.Mkdir(p, perm); err != nil {
				return err
			}
			k.populate(p)
			return nil
		},
		rmdir: func(p string) error {
			k.rmdirCalls++
			if _, err := os.Stat(p); err != nil {
				return err
			}
			if k.rmdirBusy > 0 {
				k.rmdirBusy--
				return &fs.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY}
			}
			if k.busyOn[p] > 0 {
				k.busyOn[p]--
				return &fs.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY}
			}
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				if e.IsDir() {
					return &fs.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY}
				}
			}
			if pids, _ := readPids(filepath.Join(p, "cgroup.procs")); len(pids) > 0 {
				return &fs.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY}
			}
			return os.RemoveAll(p)
		},
		kill: func(pid int, sig syscall.Signal) error {
			if sig != syscall.SIGKILL {
				k.t.Errorf("kill %d with %v, want SIGKILL", pid, sig)
			}
			k.killed = append(k.killed, pid)
			if !k.unkillable {
				k.walkProcs(func(procs string, pids []int) {
					write(k.t, procs, joinPids(slices.DeleteFunc(pids, func(p int) bool { return p == pid })))
				})
			}
			return nil
		},
		sleep: func(d time.Duration) {
			k.sleeps = append(k.sleeps, d)
			k.clock = k.clock.Add(d)
			k.tick()
		},
		now: func() time.Time { return k.clock },
	}
}

// write is a control-file write as cgroupfs takes it: the file must exist,
// cgroup.subtree_control applies +/- to its list, cgroup.procs gains the pid.
func (k *fakeKernel) write(path, value string) error {
	if _, err := os.Stat(path); err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	rel, _ := filepath.Rel(k.root, path)
	k.writes = append(k.writes, rel+"="+value)
	switch filepath.Base(path) {
	case "cgroup.subtree_control":
		on, _ := readWords(path)
		for _, w := range strings.Fields(value) {
			on[w[1:]] = w[0] == '+'
		}
		var list []string
		for _, c := range []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"} {
			if on[c] {
				list = append(list, c)
			}
		}
		write(k.t, path, strings.Join(list, " "))
		// As in cgroupfs, a child's cgroup.controllers is its parent's
		// cgroup.subtree_control.
		kids, _ := os.ReadDir(filepath.Dir(path))
		for _, e := range kids {
			if c := filepath.Join(filepath.Dir(path), e.Name(), "cgroup.controllers"); e.IsDir() && exists(c) {
				write(k.t, c, strings.Join(list, " "))
			}
		}
	case "cgroup.procs", "tasks":
		old, _ := os.ReadFile(path)
		write(k.t, path, string(old)+value+"\n")
	default:
		write(k.t, path, value)
	}
	return nil
}

func (k *fakeKernel) writesTo(rel string) []string {
	var out []string
	for _, w := range k.writes {
		if p, v, _ := strings.Cut(w, "="); p == rel {
			out = append(out, v)
		}
	}
	return out
}

// tick is what the kernel does meanwhile: honour cgroup.kill.
func (k *fakeKernel) tick() {
	k.walkProcs(func(procs string, _ []int) {
		dir := filepath.Dir(procs)
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.kill"))
		if err != nil || strings.TrimSpace(string(b)) != "1" || k.unkillable {
			return
		}
		write(k.t, procs, "")
		write(k.t, filepath.Join(dir, "cgroup.events"), "populated 0\nfrozen 0\n")
		write(k.t, filepath.Join(dir, "cgroup.kill"), "")
	})
}

func (k *fakeKernel) walkProcs(f func(procs string, pids []int)) {
	_ = filepath.WalkDir(k.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" && filepath.Dir(p) != k.root {
			pids, _ := readPids(p)
			f(p, pids)
		}
		return nil
	})
}

func (k *fakeKernel) populate(dir string) {
	t := k.t
	files := map[string]string{"cgroup.procs": ""}
	if k.version == 1 {
		files["memory.limit_in_bytes"] = "9223372036854771712\n"
		files["memory.usage_in_bytes"] = "0\n"
		files["memory.max_usage_in_bytes"] = "0\n"
		files["memory.failcnt"] = "0\n"
		files["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
		if k.oldOOM {
			files["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\n"
		}
		files["tasks"] = ""
		if !k.noSwap {
			files["memory.memsw.limit_in_bytes"] = "9223372036854771712\n"
		}
		if k.noLimitFile {
			delete(files, "memory.limit_in_bytes")
		}
	} else {
		parent, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
		files["cgroup.controllers"] = string(parent)
		files["cgroup.subtree_control"] = ""
		files["cgroup.events"] = "populated 0\nfrozen 0\n"
		files["memory.max"] = "max\n"
		files["memory.current"] = "0\n"
		files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"
		files["pids.max"] = "max\n"
		files["pids.current"] = "0\n"
		if !k.noSwap {
			files["memory.swap.max"] = "max\n"
		}
		if !k.noCgroupKill {
			files["cgroup.kill"] = ""
		}
		if k.noLimitFile {
			delete(files, "memory.max")
		}
	}
	for name, v := range files {
		write(t, filepath.Join(dir, name), v)
	}
}

// newFake is New on the fake kernel.
func (k *fakeKernel) newFake(parent, name string) Manager {
	k.t.Helper()
	m, err := New(k.host(), parent, name)
	if err != nil {
		k.t.Fatalf("New: %v", err)
	}
	return withOps(m, k.ops())
}

func withOps(m Manager, o sysOps) Manager {
	switch d := m.(type) {
	case *v1:
		d.ops = o
	case *v2:
		d.ops = o
	}
	return m
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func joinPids(pids []int) string {
	var b strings.Builder
	for _, p := range pids {
		b.WriteString(strconv.Itoa(p) + "\n")
	}
	return b.String()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
