package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// v2 drives a cgroup on the unified cgroup2 hierarchy, where memory.max
// replaces memory.limit_in_bytes and a controller works in a cgroup only
// when its parent lists it in cgroup.subtree_control.
type v2 struct{ *base }

func (m *v2) Version() int { return 2 }

// Create enables +memory (and +pids where the kernel has it) in the
// cgroup.subtree_control of the hierarchy root and of each parent, adding
// only what is missing. The parents stay without processes: cgroup v2 lets a
// cgroup hold processes or hand controllers to children, not both.
func (m *v2) Create(limit int64) error {
	if err := m.checkLimit(limit); err != nil {
		return err
	}
	if _, err := os.Stat(m.host.MemoryRoot); err != nil {
		return fmt.Errorf("create cgroup: memory hierarchy: %w", err)
	}
	if err := m.enableControllers(m.host.MemoryRoot); err != nil {
		return err
	}
	if err := m.makeDirs(m.enableControllers); err != nil {
		return err
	}
	if limit == NoLimit {
		return nil
	}
	if err := m.ops.write(m.file("memory.max"), strconv.FormatInt(limit, 10)); err != nil {
		return m.undoCreate(fmt.Errorf("set memory limit: %w", err))
	}
	if m.SwapLimited() {
		if err := m.ops.write(m.file("memory.swap.max"), "0"); err != nil {
			return m.undoCreate(fmt.Errorf("set swap limit: %w", err))
		}
	}
	return nil
}

// controllers the lab wants in every parent's cgroup.subtree_control; pids
// and cpu are optional.
var wantControllers = []string{"memory", "pids", "cpu"}

func (m *v2) enableControllers(dir string) error {
	avail, err := readWords(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("enable controllers: %w", err)
	}
	if !avail["memory"] {
		return fmt.Errorf("enable controllers: memory is not available in %s", filepath.Join(dir, "cgroup.controllers"))
	}
	sub := filepath.Join(dir, "cgroup.subtree_control")
	on, err := readWords(sub)
	if err != nil {
		return fmt.Errorf("enable controllers: %w", err)
	}
	var add []string
	for _, c := range wantControllers {
		if avail[c] && !on[c] {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	err = m.ops.write(sub, strings.Join(add, " "))
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		if err != nil {
			return fmt.Errorf("enable controllers %s: %w", strings.Join(add, " "), err)
		}
		return nil
	}
	// Not ours to write (a user's run below root's cgroups, which hand
	// memory down already): one at a time, as runc does, so that memory
	// still fails loudly and pids or cpu is left off, its limit then
	// reported as having no controller.
	for _, c := range add {
		if err := m.ops.write(sub, c); err != nil && (c == "+memory" || !errors.Is(err, fs.ErrPermission)) {
			return fmt.Errorf("enable controllers %s: %w", c, err)
		}
	}
	return nil
}

func (m *v2) SwapLimited() bool { return m.exists("memory.swap.max") }

func (m *v2) Join(pid int) error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			return fmt.Errorf("join cgroup %s: it has a child cgroup %s, and cgroup v2 puts processes only in leaves", m.dir, e.Name())
		}
	}
	return m.join(m.file("cgroup.procs"), pid)
}

// OOMKills reads oom_kill from memory.events (Linux 4.13 and later); before
// that it returns the oom line, the times the cgroup hit its limit.
func (m *v2) OOMKills() (int64, error) {
	f := m.file("memory.events")
	n, ok, err := readKeyed(f, "oom_kill")
	if err == nil && !ok {
		n, _, err = readKeyed(f, "oom")
	}
	if err != nil {
		return 0, fmt.Errorf("read OOM kills: %w", err)
	}
	return n, nil
}

// Kill writes 1 to cgroup.kill (Linux 5.14 and later), which SIGKILLs every
// process at once, or falls back to SIGKILL for each listed process; then it
// waits until the cgroup is empty.
func (m *v2) Kill() error {
	if !m.exists("cgroup.kill") {
		return m.killEach()
	}
	if err := m.ops.write(m.file("cgroup.kill"), "1"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("kill processes: %w", err)
	}
	return m.waitEmpty(m.empty)
}

func (m *v2) empty() (bool, error) {
	n, ok, err := readKeyed(m.file("cgroup.events"), "populated")
	if errors.Is(err, fs.ErrNotExist) && !m.exists("") {
		return true, nil // the cgroup is gone
	}
	if err == nil && ok {
		return n == 0, nil
	}
	pids, err := readPids(m.file("cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return len(pids) == 0, err
}

func (m *v2) Remove() error { return m.remove(m.Kill) }

var v2Files = []fileMeaning{
	{"memory.max", "the limit: past it the kernel reclaims memory, then OOM-kills"},
	{"memory.current", "memory charged to the cgroup now, page cache included"},
	{"memory.peak", "the most it has used since it was made"},
	{"memory.events", "max: times usage hit the limit; oom_kill: processes the OOM killer ended"},
	{"memory.swap.max", "how much it may swap; 0: none"},
	{"cgroup.procs", "the processes in the cgroup; writing a PID here moves it in"},
	{"pids.current", "processes and threads in it now"},
	{"pids.max", "the most processes and threads it may have"},
	{"pids.events", "max: forks refused at the limit"},
	{"cpu.max", "quota and period in µs: the CPU time it may use per period; max: no limit"},
	{"cpu.stat", "nr_throttled: periods it was stopped at its quota; throttled_usec: for how long"},
}

func (m *v2) Files() []File { return m.files(v2Files) }
