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

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
)

// Cgroup is the target's memory cgroup, read (never written) from any
// place in the hierarchy: inspect looks at other runtimes' cgroups too, so
// it does not go through cgroup.Open, which accepts only the lab's own.
type Cgroup struct {
	Version int `json:"version"`
	// Hierarchy is the /proc/PID/cgroup line used: "memory" (v1) or "unified" (v2).
	Hierarchy string `json:"hierarchy"`
	// HostPath is the cgroup as the host sees it, in /proc/PID/cgroup.
	HostPath string `json:"host_path"`
	// ContainerPath is the same cgroup as the target sees it; "" when that
	// cannot be told from outside.
	ContainerPath string       `json:"container_path"`
	ContainerView string       `json:"container_view"` // why ContainerPath is what it is
	Dir           string       `json:"dir"`            // the cgroup's directory on the host
	LimitBytes    int64        `json:"limit_bytes"`    // -1: no limit (or no file)
	UsageBytes    int64        `json:"usage_bytes"`
	PeakBytes     int64        `json:"peak_bytes"` // -1: the kernel keeps no peak
	OOMKills      int64        `json:"oom_kills"`  // -1: unknown
	Files         []CgroupFile `json:"files"`
	// Limits are the task and CPU limits; null without a pids or cpu
	// controller for it.
	Limits *Limits `json:"limits"`
}

// CgroupFile is one control file as read.
type CgroupFile struct {
	Name    string `json:"name"`
	Value   string `json:"value"` // the file's text, trimmed
	Bytes   *int64 `json:"bytes"` // for sizes; null otherwise or for "no limit"
	Human   string `json:"human"` // the value in human units, or a count
	Meaning string `json:"meaning"`
}

type fileKind int

const (
	kSize  fileKind = iota // a number of bytes, or a "no limit" value
	kCount                 // a plain counter
	kKeyed                 // "key value" lines
	kPIDs                  // a list of process or thread IDs
)

type keyFile struct {
	name string
	kind fileKind
	unit string // for kPIDs: what the IDs are
}

var v1Files = []keyFile{
	{"memory.limit_in_bytes", kSize, ""},
	{"memory.usage_in_bytes", kSize, ""},
	{"memory.max_usage_in_bytes", kSize, ""},
	{"memory.failcnt", kCount, ""},
	{"memory.oom_control", kKeyed, ""},
	{"tasks", kPIDs, "task"},
}

var v2Files = []keyFile{
	{"memory.max", kSize, ""},
	{"memory.current", kSize, ""},
	{"memory.peak", kSize, ""},
	{"memory.events", kKeyed, ""},
	{"memory.swap.max", kSize, ""},
	{"cgroup.procs", kPIDs, "process"},
}

// noLimit is where v1 limits start to mean "none": the kernel's
// PAGE_COUNTER_MAX in bytes is 9223372036854771712 on 64-bit hosts.
const noLimit = 1 << 62

type cgLine struct {
	controllers []string
	path        string
}

// parseCgroupFile splits /proc/PID/cgroup ("4:memory:/underhood/x") into
// its lines; the cgroup2 line has no controllers ("0::/x").
func parseCgroupFile(b []byte) []cgLine {
	var out []cgLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var ctl []string
		if parts[1] != "" {
			ctl = strings.Split(parts[1], ",")
		}
		out = append(out, cgLine{controllers: ctl, path: parts[2]})
	}
	return out
}

// readCgroup finds the target's memory cgroup and reads its key files.
// sameNS says whether the target shares the host's cgroup namespace; mounts
// is the target's mount table, where a cgroup mount made in its own
// namespace shows that namespace's root, and hostMounts the host's, to tell
// such a mount from one it inherited.
func readCgroup(p procfs, h cgroup.Host, pid int, sameNS bool, mounts, hostMounts []mount.Info) (*Cgroup, error) {
	if h.MemoryVersion == 0 {
		return nil, nil
	}
	f := p.Path(pid, "cgroup")
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f, err)
	}
	c := &Cgroup{Version: h.MemoryVersion, LimitBytes: -1, PeakBytes: -1, OOMKills: -1, Files: []CgroupFile{}}
	found := false
	lines := parseCgroupFile(b)
	for _, l := range lines {
		if h.MemoryVersion == 1 && slices.Contains(l.controllers, "memory") ||
			h.MemoryVersion == 2 && len(l.controllers) == 0 {
			c.HostPath, found = l.path, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("parse %s: no %s line", f, map[int]string{1: "memory", 2: "cgroup2 (0::)"}[h.MemoryVersion])
	}
	c.Hierarchy = "memory"
	if h.MemoryVersion == 2 {
		c.Hierarchy = "unified"
	}
	c.Dir = filepath.Join(h.MemoryRoot, c.HostPath)
	c.ContainerPath, c.ContainerView = containerView(c.HostPath, h.MemoryVersion, sameNS, mounts, hostMounts)

	files := v1Files
	if h.MemoryVersion == 2 {
		files = v2Files
	}
	for _, k := range files {
		raw, err := os.ReadFile(filepath.Join(c.Dir, k.name))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			continue // not on this kernel, or the root cgroup, or just removed
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(c.Dir, k.name), err)
		}
		cf := describe(k, strings.TrimSpace(string(raw)))
		cf.Meaning = cgroup.Meaning(h.MemoryVersion, k.name)
		c.Files = append(c.Files, cf)
		switch k.name {
		case "memory.limit_in_bytes", "memory.max":
			if cf.Bytes != nil {
				c.LimitBytes = *cf.Bytes
			}
		case "memory.usage_in_bytes", "memory.current":
			if cf.Bytes != nil {
				c.UsageBytes = *cf.Bytes
			}
		case "memory.max_usage_in_bytes", "memory.peak":
			if cf.Bytes != nil {
				c.PeakBytes = *cf.Bytes
			}
		case "memory.oom_control", "memory.events":
			if n, ok := keyed(cf.Value, "oom_kill"); ok {
				c.OOMKills = n
			}
		}
	}
	if c.Limits, err = readLimits(h, h.MemoryVersion, c.Dir, lines); err != nil {
		return nil, err
	}
	return c, nil
}

// containerView is the cgroup path as the target sees it. /proc/PID/cgroup
// is rendered relative to the reader's cgroup namespace, so from the host
// it always shows the host's path; the target's namespace root can be seen
// only as the root of a cgroup filesystem mounted inside that namespace.
// A mount copied from the host's table (same place, same root, same
// options) says nothing about it, so it is skipped.
func containerView(hostPath string, version int, sameNS bool, mounts, hostMounts []mount.Info) (string, string) {
	if sameNS {
		return hostPath, "in the same cgroup namespace as the host, so it sees the same path"
	}
	type same struct{ mountpoint, root, fstype, options string }
	inherited := map[same]bool{}
	for _, m := range hostMounts {
		inherited[same{m.Mountpoint, m.Root, m.FSType, m.SuperOption}] = true
	}
	var best *mount.Info
	for i, m := range mounts {
		v1 := m.FSType == "cgroup" && slices.Contains(strings.Split(m.SuperOption, ","), "memory")
		if !(version == 1 && v1) && !(version == 2 && m.FSType == "cgroup2") {
			continue
		}
		if inherited[same{m.Mountpoint, m.Root, m.FSType, m.SuperOption}] {
			continue
		}
		if best == nil || len(m.Root) >= len(best.Root) {
			best = &mounts[i]
		}
	}
	if best == nil {
		return "", "in its own cgroup namespace, whose root cannot be seen from outside (it mounted no cgroup filesystem of its own)"
	}
	return relCgroup(hostPath, best.Root), fmt.Sprintf("in its own cgroup namespace, rooted at %s (the root of the cgroup filesystem it mounted at %s): paths inside start there", best.Root, best.Mountpoint)
}

// relCgroup is path relative to root, written as the kernel writes a path
// outside a namespace's root ("/../x").
func relCgroup(path, root string) string {
	switch {
	case root == "/":
		return path
	case path == root:
		return "/"
	case strings.HasPrefix(path, root+"/"):
		return path[len(root):]
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return "/" + rel
}

func describe(k keyFile, v string) CgroupFile {
	cf := CgroupFile{Name: k.name, Value: v}
	switch k.kind {
	case kSize:
		if v == "max" {
			cf.Human = "no limit"
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			break
		}
		if n >= noLimit {
			cf.Human = "no limit"
			break
		}
		cf.Bytes = &n
		if strings.HasPrefix(k.name, "pids.") {
			cf.Bytes = nil
			cf.Human = plural(int(n), "process", "processes")
			break
		}
		cf.Human = cgroup.FormatSize(n)
	case kPIDs:
		many := k.unit + "s"
		if k.unit == "process" {
			many = "processes"
		}
		cf.Human = plural(len(strings.Fields(v)), k.unit, many)
	}
	return cf
}

// keyed finds key in "key value" lines.
func keyed(v, key string) (int64, bool) {
	for _, l := range strings.Split(v, "\n") {
		k, val, ok := strings.Cut(strings.TrimSpace(l), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// oomNow reads the OOM-kill counter and the peak of a cgroup directory
// again, for the last word of a watch: -1 where a file is gone.
func oomNow(c *Cgroup) (kills, peak int64) {
	kills, peak = -1, -1
	if c == nil {
		return
	}
	ev, pk := "memory.oom_control", "memory.max_usage_in_bytes"
	if c.Version == 2 {
		ev, pk = "memory.events", "memory.peak"
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, ev)); err == nil {
		if n, ok := keyed(strings.TrimSpace(string(b)), "oom_kill"); ok {
			kills = n
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, pk)); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			peak = n
		}
	}
	return
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
