package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// v1 drives a cgroup on the v1 memory hierarchy (/sys/fs/cgroup/memory/…),
// the files the article uses.
type v1 struct{ *base }

func (m *v1) Version() int { return 1 }

func (m *v1) Create(limit int64) error {
	if err := m.checkLimit(limit); err != nil {
		return err
	}
	if err := m.makeDirs(nil); err != nil {
		return err
	}
	if limit == NoLimit {
		return nil
	}
	v := strconv.FormatInt(limit, 10)
	if err := m.ops.write(m.file("memory.limit_in_bytes"), v); err != nil {
		return m.undoCreate(fmt.Errorf("set memory limit: %w", err))
	}
	// memory+swap equal to memory: no room left for swap. The file exists
	// only with swap accounting (swapaccount=1 on older kernels).
	if m.SwapLimited() {
		if err := m.ops.write(m.file("memory.memsw.limit_in_bytes"), v); err != nil {
			return m.undoCreate(fmt.Errorf("set swap limit: %w", err))
		}
	}
	return nil
}

func (m *v1) SwapLimited() bool { return m.exists("memory.memsw.limit_in_bytes") }

func (m *v1) Join(pid int) error {
	f := m.file("cgroup.procs")
	if !m.exists("cgroup.procs") && m.exists("tasks") {
		f = m.file("tasks")
	}
	if err := m.join(f, pid); err != nil {
		return err
	}
	for _, d := range m.extras() {
		if err := m.join(filepath.Join(d, "cgroup.procs"), pid); err != nil {
			return err
		}
	}
	return nil
}

// OOMKills reads oom_kill from memory.oom_control (Linux 4.13 and later).
// Older kernels lack that line; there it returns memory.failcnt, the number
// of times usage hit the limit: at least 1 whenever a kill happened, but it
// also counts reclaims that ended well, so it is an upper bound.
func (m *v1) OOMKills() (int64, error) {
	n, ok, err := readKeyed(m.file("memory.oom_control"), "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("read OOM kills: %w", err)
	}
	if ok {
		return n, nil
	}
	n, err = readInt(m.file("memory.failcnt"))
	if err != nil {
		return 0, fmt.Errorf("read OOM kills: no oom_kill in memory.oom_control (kernel before 4.13): %w", err)
	}
	return n, nil
}

func (m *v1) Kill() error { return m.killEach() }

// Remove removes the cgroup, then its twins in the pids and cpu
// hierarchies, which the kill has emptied too.
func (m *v1) Remove() error {
	if err := m.remove(m.Kill); err != nil {
		return err
	}
	for _, d := range m.extras() {
		if err := m.rmdir(d); err != nil {
			return err
		}
	}
	return nil
}

var v1Files = []fileMeaning{
	{"memory.limit_in_bytes", "the limit: past it the kernel reclaims memory, then OOM-kills"},
	{"memory.memsw.limit_in_bytes", "the limit for memory plus swap: equal to the limit means no swap"},
	{"memory.usage_in_bytes", "memory charged to the cgroup now, page cache included"},
	{"memory.max_usage_in_bytes", "the most it has used since it was made"},
	{"memory.failcnt", "how many times usage hit the limit"},
	{"memory.oom_control", "oom_kill: processes the OOM killer ended here; under_oom 1: stuck at the limit"},
	{"tasks", "the threads in the cgroup; writing a PID here moves it in"},
	{"pids.max", "(pids hierarchy) the most processes and threads it may have"},
	{"pids.current", "(pids hierarchy) processes and threads in it now"},
	{"pids.events", "(pids hierarchy) max: forks refused at the limit"},
	{"cpu.cfs_quota_us", "(cpu hierarchy) µs of CPU time per period; -1: no limit"},
	{"cpu.cfs_period_us", "(cpu hierarchy) the period, in µs"},
	{"cpu.stat", "(cpu hierarchy) nr_throttled: periods it was stopped at its quota"},
}

// Files reads the memory cgroup's files, and the pids and cpu ones from
// the run's cgroups in those hierarchies.
func (m *v1) Files() []File {
	var out []File
	for _, f := range v1Files {
		dir := m.dir
		if c, _, ok := strings.Cut(f.name, "."); ok && (c == "pids" || c == "cpu") {
			dir = m.extraDir(c)
		}
		v, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			continue
		}
		out = append(out, File{Name: f.name, Value: strings.TrimSpace(string(v)), Meaning: f.meaning})
	}
	return out
}
