package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Limits are what a run's cgroup holds it to, beyond memory: the number of
// tasks (processes and threads) and a share of CPU time. Zero is no limit.
type Limits struct {
	Pids int64
	// CPUQuota is how much CPU time, in µs, the cgroup may use per
	// CPUPeriod µs: 20000 of 100000 is 20 % of one CPU.
	CPUQuota, CPUPeriod int64
}

// DefaultPids is the task limit of every lab run with a cgroup: far more
// than a workshop payload starts, far fewer than a fork storm would.
const DefaultPids = 1024

// ErrNoController means the host has no pids or cpu controller for a
// limit: nothing was changed.
var ErrNoController = errors.New("no such controller on this host")

// DefaultCPUPeriod is the scheduler's period for CPU limits, in µs.
const DefaultCPUPeriod = 100000

// Counters are the kernel's own evidence that a limit held.
type Counters struct {
	PidsCurrent   int64 // tasks in the cgroup now
	PidsDenied    int64 // forks refused at pids.max (pids.events max)
	NrPeriods     int64 // CPU periods with the cgroup runnable
	NrThrottled   int64 // periods it was throttled in
	ThrottledUsec int64 // time it spent throttled
}

// SetLimits writes the task and CPU limits of a cgroup Create made. On v2
// they are files of the cgroup itself; on v1 each controller has its own
// hierarchy, so the same name is made under underhood's parent in the pids
// and cpu hierarchies too, and Join and Remove cover those as well.
func (m *v2) SetLimits(l Limits) error {
	if l.Pids > 0 {
		if err := m.write("pids.max", strconv.FormatInt(l.Pids, 10), "pids"); err != nil {
			return err
		}
	}
	if l.CPUQuota > 0 {
		v := fmt.Sprintf("%d %d", l.CPUQuota, period(l))
		if err := m.write("cpu.max", v, "cpu"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) write(file, value, controller string) error {
	if !m.exists(file) {
		return fmt.Errorf("set %s limit: no %s in %s (see underhood doctor): %w", controller, file, m.dir, ErrNoController)
	}
	if err := m.ops.write(m.file(file), value); err != nil {
		return m.undoCreate(fmt.Errorf("set %s limit: %w", controller, err))
	}
	return nil
}

func (m *v2) Counters() (Counters, error) {
	var c Counters
	c.PidsCurrent, _ = readInt(m.file("pids.current"))
	c.PidsDenied, _, _ = readKeyed(m.file("pids.events"), "max")
	c.NrPeriods, _, _ = readKeyed(m.file("cpu.stat"), "nr_periods")
	c.NrThrottled, _, _ = readKeyed(m.file("cpu.stat"), "nr_throttled")
	c.ThrottledUsec, _, _ = readKeyed(m.file("cpu.stat"), "throttled_usec")
	return c, nil
}

func (m *v1) SetLimits(l Limits) error {
	for c, want := range map[string]bool{"pids": l.Pids > 0, "cpu": l.CPUQuota > 0} {
		if !want {
			continue
		}
		root := filepath.Join(m.host.Root, c)
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			return fmt.Errorf("set %s limit: no %s hierarchy at %s (see underhood doctor): %w", c, c, root, ErrNoController)
		}
		// A user's run (not root's) has the controller only where the
		// parent is delegated to the user in that hierarchy too.
		if dir := deepest(root, m.parent); unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
			return fmt.Errorf("set %s limit: %s is not delegated to you: %w", c, dir, ErrNoController)
		}
	}
	if l.Pids > 0 {
		if err := m.limitIn("pids", "pids.max", strconv.FormatInt(l.Pids, 10)); err != nil {
			return m.undoExtra(err)
		}
	}
	if l.CPUQuota > 0 {
		if err := m.limitIn("cpu", "cpu.cfs_period_us", strconv.FormatInt(period(l), 10)); err != nil {
			return m.undoExtra(err)
		}
		if err := m.limitIn("cpu", "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota, 10)); err != nil {
			return m.undoExtra(err)
		}
	}
	return nil
}

// limitIn makes the run's cgroup in the v1 hierarchy of controller (once)
// and writes file there.
func (m *v1) limitIn(controller, file, value string) error {
	root := filepath.Join(m.host.Root, controller)
	dir := m.extraDir(controller)
	cur := root
	for _, c := range append(append([]string{}, m.parent...), filepath.Base(m.dir)) {
		cur = filepath.Join(cur, c)
		if err := m.ops.mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s cgroup: %w", controller, err)
		}
	}
	if err := m.ops.write(filepath.Join(dir, file), value); err != nil {
		return fmt.Errorf("set %s limit: %w", controller, err)
	}
	return nil
}

// extraDir is the run's cgroup in another v1 hierarchy.
func (m *v1) extraDir(controller string) string {
	return filepath.Join(append(append([]string{m.host.Root, controller}, m.parent...), filepath.Base(m.dir))...)
}

// extras are the run's cgroups in the other v1 hierarchies that exist.
func (m *v1) extras() []string {
	var out []string
	for _, c := range []string{"pids", "cpu"} {
		d := m.extraDir(c)
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

func (m *v1) undoExtra(err error) error {
	for _, d := range m.extras() {
		_ = m.ops.rmdir(d)
	}
	return m.undoCreate(err)
}

func (m *v1) Counters() (Counters, error) {
	var c Counters
	p := m.extraDir("pids")
	c.PidsCurrent, _ = readInt(filepath.Join(p, "pids.current"))
	c.PidsDenied, _, _ = readKeyed(filepath.Join(p, "pids.events"), "max")
	cpu := filepath.Join(m.extraDir("cpu"), "cpu.stat")
	c.NrPeriods, _, _ = readKeyed(cpu, "nr_periods")
	c.NrThrottled, _, _ = readKeyed(cpu, "nr_throttled")
	var ns int64
	ns, _, _ = readKeyed(cpu, "throttled_time")
	c.ThrottledUsec = ns / 1000
	return c, nil
}

func period(l Limits) int64 {
	if l.CPUPeriod > 0 {
		return l.CPUPeriod
	}
	return DefaultCPUPeriod
}
