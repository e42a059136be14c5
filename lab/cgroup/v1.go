package cgroup

import (
	"fmt"
	"strconv"
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
	return m.join(f, pid)
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

func (m *v1) Remove() error { return m.remove(m.Kill) }

var v1Files = []fileMeaning{
	{"memory.limit_in_bytes", "the limit: past it the kernel reclaims memory, then OOM-kills"},
	{"memory.memsw.limit_in_bytes", "the limit for memory plus swap: equal to the limit means no swap"},
	{"memory.usage_in_bytes", "memory charged to the cgroup now, page cache included"},
	{"memory.max_usage_in_bytes", "the most it has used since it was made"},
	{"memory.failcnt", "how many times usage hit the limit"},
	{"memory.oom_control", "oom_kill: processes the OOM killer ended here; under_oom 1: stuck at the limit"},
	{"tasks", "the threads in the cgroup; writing a PID here moves it in"},
}

func (m *v1) Files() []File { return m.files(v1Files) }
