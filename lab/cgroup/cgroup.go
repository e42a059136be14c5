// Package cgroup creates, limits, joins, reads and removes the lab's memory
// cgroups on cgroup v1, v2 and hybrid hosts. One Manager interface, a v1 and
// a v2 driver, chosen by statfs magic as runc does. All of underhood's
// cgroups live under one parent (DefaultParent) at the root of the hierarchy
// that holds the memory controller, or, for a user who is not root, below a
// cgroup delegated to that user (see Delegated); nothing else is ever
// written.
package cgroup

// DefaultParent is the one parent cgroup under which all lab cgroups live.
const DefaultParent = "underhood"

// Layout is how the host mounts its cgroup hierarchies.
type Layout string

const (
	V1     Layout = "v1"     // every controller on its own v1 hierarchy
	V2     Layout = "v2"     // one unified cgroup2 hierarchy
	Hybrid Layout = "hybrid" // v1 controllers plus cgroup2 at <root>/unified
	None   Layout = "none"   // nothing mounted at the root
)

// Host describes the cgroup layout found under Root (normally /sys/fs/cgroup).
type Host struct {
	Root   string
	Layout Layout
	// MemoryRoot is the root of the hierarchy holding the memory controller:
	// <root>/memory on v1 and hybrid, <root> on v2; "" when there is none.
	MemoryRoot string
	// MemoryVersion is 1 or 2 (the driver to use), 0 without a memory controller.
	MemoryVersion int
	// Unified is the cgroup2 mount, if any: <root> on v2, <root>/unified on hybrid.
	Unified string
	// Base, when not "", is a cgroup v2 delegated to a user who is not
	// root (the user's own, under systemd's Delegate=yes): MemoryRoot is
	// Base then, and the lab's parent is made below it. See Below.
	Base string
}

// Below is h with the lab's cgroups below base, a cgroup of h's v2 memory
// hierarchy delegated to the user: New(h.Below(base), DefaultParent, name)
// is base/underhood/name.
func (h Host) Below(base string) Host {
	h.MemoryRoot, h.Base = base, base
	return h
}

// Mount is the root of the hierarchy that holds the memory controller,
// which /proc/PID/cgroup names cgroups from: the cgroup2 mount on v2, the
// memory hierarchy on v1. It is not MemoryRoot when Base is set.
func (h Host) Mount() string {
	if h.MemoryVersion == 2 && h.Unified != "" {
		return h.Unified
	}
	return h.MemoryRoot
}

// Manager is one lab cgroup.
type Manager interface {
	Version() int
	// Path is the cgroup's directory as the host sees it.
	Path() string
	// Create makes the parent (if missing) and the cgroup, then sets the
	// memory limit in bytes and, where the kernel has the files, a swap limit
	// of zero. It fails if the cgroup already exists.
	Create(limit int64) error
	// SetLimits sets the task and CPU limits, after Create.
	SetLimits(l Limits) error
	// Counters reads the kernel's counters for those limits.
	Counters() (Counters, error)
	// SwapLimited reports whether Create could forbid swap (v1
	// memory.memsw.limit_in_bytes, v2 memory.swap.max exist).
	SwapLimited() bool
	// Join moves pid into the cgroup (v1 cgroup.procs or tasks, v2 cgroup.procs).
	Join(pid int) error
	// OOMKills is the kernel's OOM-kill counter for the cgroup (v1
	// memory.oom_control oom_kill, v2 memory.events oom_kill).
	OOMKills() (int64, error)
	// Procs lists the processes in the cgroup.
	Procs() ([]int, error)
	// Kill ends every process in the cgroup (cgroup.kill on v2 when present,
	// SIGKILL to each listed pid otherwise).
	Kill() error
	// Remove deletes the cgroup directory, killing what is left and retrying
	// with back-off on EBUSY; a missing cgroup is not an error.
	Remove() error
	// Files reads the key control files for display: name to raw value.
	Files() []File
}

// File is one control file as read.
type File struct {
	Name    string
	Value   string
	Meaning string
}
