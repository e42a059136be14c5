package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
)

// Limits are the target's task and CPU limits and the kernel's counters for
// them: on v2 files of its one cgroup, on v1 of its cgroups in the pids and
// cpu hierarchies. A number the kernel does not show is -1.
type Limits struct {
	PidsDir       string       `json:"pids_dir"` // "": no pids controller for it
	CPUDir        string       `json:"cpu_dir"`  // "": no cpu controller for it
	PidsMax       int64        `json:"pids_max"` // -1: no limit
	PidsCurrent   int64        `json:"pids_current"`
	PidsDenied    int64        `json:"pids_denied"`     // pids.events max: forks refused
	CPUQuotaUsec  int64        `json:"cpu_quota_usec"`  // -1: no limit
	CPUPeriodUsec int64        `json:"cpu_period_usec"` // -1: unknown
	NrPeriods     int64        `json:"nr_periods"`
	NrThrottled   int64        `json:"nr_throttled"` // periods stopped at the quota
	ThrottledUsec int64        `json:"throttled_usec"`
	Files         []CgroupFile `json:"files"`
}

var v2LimitFiles = []string{"pids.current", "pids.max", "pids.events", "cpu.max", "cpu.stat"}

// readLimits reads the limits of the cgroups lines name (/proc/PID/cgroup);
// nil when the host has neither controller for it.
func readLimits(h cgroup.Host, version int, memDir string, lines []cgLine) (*Limits, error) {
	l := &Limits{PidsMax: -1, PidsCurrent: -1, PidsDenied: -1, CPUQuotaUsec: -1, CPUPeriodUsec: -1, NrPeriods: -1, NrThrottled: -1, ThrottledUsec: -1, Files: []CgroupFile{}}
	type src struct{ dir, name string }
	var files []src
	if version == 2 {
		if exists(filepath.Join(memDir, "pids.max")) {
			l.PidsDir = memDir
		}
		if exists(filepath.Join(memDir, "cpu.max")) {
			l.CPUDir = memDir
		}
		for _, n := range v2LimitFiles {
			files = append(files, src{memDir, n})
		}
	} else {
		for _, ln := range lines {
			// A v1 hierarchy is mounted at a directory named by its
			// controllers: pids, cpu,cpuacct.
			dir := filepath.Join(h.Root, strings.Join(ln.controllers, ","), ln.path)
			if slices.Contains(ln.controllers, "pids") && exists(dir) {
				l.PidsDir = dir
			}
			if slices.Contains(ln.controllers, "cpu") && exists(dir) {
				l.CPUDir = dir
			}
		}
		if l.PidsDir != "" {
			files = append(files, src{l.PidsDir, "pids.current"}, src{l.PidsDir, "pids.max"}, src{l.PidsDir, "pids.events"})
		}
		if l.CPUDir != "" {
			files = append(files, src{l.CPUDir, "cpu.cfs_quota_us"}, src{l.CPUDir, "cpu.cfs_period_us"}, src{l.CPUDir, "cpu.stat"})
		}
	}
	if l.PidsDir == "" && l.CPUDir == "" {
		return nil, nil
	}
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(f.dir, f.name))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(f.dir, f.name), err)
		}
		v := strings.TrimSpace(string(raw))
		cf := CgroupFile{Name: f.name, Value: v, Meaning: cgroup.Meaning(version, f.name)}
		num := func() int64 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
		switch f.name {
		case "pids.current":
			l.PidsCurrent = num()
			cf.Human = plural(int(l.PidsCurrent), "task", "tasks")
		case "pids.max":
			l.PidsMax = num()
			cf.Human = "no limit"
			if l.PidsMax >= 0 {
				cf.Human = plural(int(l.PidsMax), "task", "tasks")
			}
		case "pids.events":
			if n, ok := keyed(v, "max"); ok {
				l.PidsDenied = n
				cf.Human = plural(int(n), "fork refused", "forks refused")
			}
		case "cpu.max":
			q, p, _ := strings.Cut(v, " ")
			if n, err := strconv.ParseInt(p, 10, 64); err == nil {
				l.CPUPeriodUsec = n
			}
			if n, err := strconv.ParseInt(q, 10, 64); err == nil {
				l.CPUQuotaUsec = n
			}
			cf.Human = cpuShare(l.CPUQuotaUsec, l.CPUPeriodUsec)
		case "cpu.cfs_quota_us":
			l.CPUQuotaUsec = num()
			cf.Human = "no limit"
			if l.CPUQuotaUsec >= 0 {
				cf.Human = fmt.Sprintf("%d µs per period", l.CPUQuotaUsec)
			}
		case "cpu.cfs_period_us":
			l.CPUPeriodUsec = num()
			cf.Human = time.Duration(l.CPUPeriodUsec * 1000).String()
		case "cpu.stat":
			if n, ok := keyed(v, "nr_periods"); ok {
				l.NrPeriods = n
			}
			if n, ok := keyed(v, "nr_throttled"); ok {
				l.NrThrottled = n
			}
			if n, ok := keyed(v, "throttled_usec"); ok {
				l.ThrottledUsec = n
			} else if n, ok := keyed(v, "throttled_time"); ok { // v1: ns
				l.ThrottledUsec = n / 1000
			}
			// Only the throttling lines: the rest is usage, not the limit.
			var keep []string
			for _, ln := range strings.Split(v, "\n") {
				if strings.HasPrefix(ln, "nr_") || strings.HasPrefix(ln, "throttled_") {
					keep = append(keep, ln)
				}
			}
			cf.Value = strings.Join(keep, "\n")
			if l.NrThrottled >= 0 {
				cf.Human = fmt.Sprintf("throttled in %d of %d periods", l.NrThrottled, max(l.NrPeriods, 0))
			}
		}
		l.Files = append(l.Files, cf)
	}
	if version == 1 && l.CPUQuotaUsec >= 0 {
		for i := range l.Files {
			if l.Files[i].Name == "cpu.cfs_quota_us" {
				l.Files[i].Human = cpuShare(l.CPUQuotaUsec, l.CPUPeriodUsec)
			}
		}
	}
	return l, nil
}

// cpuShare is a quota per period in words.
func cpuShare(quota, period int64) string {
	if quota < 0 {
		return "no limit"
	}
	if period <= 0 {
		return fmt.Sprintf("%d µs per period", quota)
	}
	return fmt.Sprintf("%.3g CPUs", float64(quota)/float64(period))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
