// Package inspect looks at a process from the host, the way a container
// runtime's inspect does: the processes of its PID namespace, which of its
// namespaces differ from the host's, its memory cgroup and the mounts it
// sees. It only reads: procfs and cgroupfs files, never setns(2), never an
// external tool, and each /proc file at most once per snapshot.
//
// The procfs root and the cgroup layout are parameters (Sources), so the
// tests run on fixture trees.
package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/proc"
)

// Sources is where the inspector reads from.
type Sources struct {
	Proc    proc.Root   // normally proc.Host
	Cgroups cgroup.Host // the host's cgroup layout, from cgroup.Detect
	// Hostname is the host's hostname (os.Hostname).
	Hostname func() (string, error)
	Now      func() time.Time
	// Lab are the lab's running containers, so that their namespaces can be
	// named.
	Lab []Lab
	// KernelLog is where --watch looks for OOM kills after a cgroup is gone
	// (/dev/kmsg); "" not to.
	KernelLog string
	// Links lists the interfaces of process pid's network namespace; nil
	// not to look (a fixture /proc has no network behind it).
	Links func(pid int) ([]netns.Link, error)
}

// Lab is one of the lab's running containers.
type Lab struct {
	Name string
	Kind string // "run" sets the hostname to Name; see container.Status
	PID  int    // the payload's host PID
}

// Default reads the host itself: /proc, the cgroup layout at /sys/fs/cgroup.
func Default(lab []Lab) (Sources, error) {
	h, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil {
		return Sources{}, err
	}
	return Sources{Proc: proc.Host, Cgroups: h, Hostname: os.Hostname, Now: time.Now, Lab: lab, KernelLog: "/dev/kmsg", Links: pidLinks}, nil
}

// NoProcessError is a PID with no process behind it.
type NoProcessError struct{ PID int }

func (e *NoProcessError) Error() string { return fmt.Sprintf("no process %d", e.PID) }
func (e *NoProcessError) Unwrap() error { return proc.ErrExited }

// The JSON documents below are what 'underhood inspect --json' prints; the
// field names are a stable interface (golden files in testdata guard them).
//
// Report (one process):
//
//	time                      when the snapshot was taken (RFC 3339)
//	exited                    true when the target ended while it was read
//	target.pid                the host PID; target.name and target.kind its lab
//	                          container, if it is one (omitted otherwise)
//	target.command            its argv joined by spaces ([comm] for a kernel thread)
//	target.start_time         clock ticks since boot (with pid, names it for good)
//	host.pid                  whose namespaces count as the host's: 1, or 2
//	                          (kthreadd) where 1 is not readable; host.note says why
//	host.hostname, host.processes, host.mounts, host.cgroup_layout
//	processes.host_count      processes the host sees
//	processes.container_count processes in the target's PID namespace
//	processes.unreadable      processes whose namespace could not be read
//	processes.shared_with_host  the target is in the host's PID namespace
//	processes.list[]          host_pid, pid (inside), ppid (inside; 0 = outside),
//	                          host_ppid, command, exited
//	namespaces[]              type, host_inode, inode, isolated, isolates
//	cgroup                    null without a memory controller, or once exited;
//	                          version, hierarchy, host_path, container_path ("" = unknown),
//	                          container_view, dir, limit_bytes (-1 = none),
//	                          usage_bytes, peak_bytes, oom_kills (-1 = unknown),
//	                          files[] (name, value, bytes, human, meaning)
//	network                   only when the target has a network namespace of
//	                          its own: inside[] and host_ends[] (the host's ends
//	                          of its veth pairs), each name, kind, up, addrs[]
//	cgroup.limits             null without a pids or cpu controller; pids_dir,
//	                          cpu_dir, pids_max (-1 = none), pids_current,
//	                          pids_denied, cpu_quota_usec (-1 = none),
//	                          cpu_period_usec, nr_periods, nr_throttled,
//	                          throttled_usec (-1 = unknown), files[]
//	privileges                null where status shows none; cap_eff, cap_prm,
//	                          cap_bnd (hex), effective[] (names), no_new_privs,
//	                          seccomp (0 none, 1 strict, 2 filter), summary
//	filesystem                root, mount_count, host_mount_count, hostname
//	                          ("" = unknown), hostname_source (host, lab, ""),
//	                          mounts[] (mountpoint, fstype, source)
//
// Overview (the host): time, host (as above), namespaces[] (inode, type,
// nprocs, pid, command, host, lab_container), unreadable, zombies (exited,
// not yet reaped: counted only in their pid and user namespaces, as lsns
// counts them).
//
// Exit (the last line of --watch when the target ends): event
// ("target_exited"), time, pid, oom_kills_before, oom_kills_after,
// oom_kills_from ("cgroup", "kernel_log" once the cgroup was gone, or ""),
// peak_bytes.
type Report struct {
	Time       time.Time   `json:"time"`
	Exited     bool        `json:"exited"`
	Target     Target      `json:"target"`
	Host       HostInfo    `json:"host"`
	Processes  Processes   `json:"processes"`
	Namespaces []Namespace `json:"namespaces"`
	Cgroup     *Cgroup     `json:"cgroup"`
	Network    *Network    `json:"network,omitempty"`
	Filesystem Filesystem  `json:"filesystem"`
	Privileges *Privileges `json:"privileges"`
}

// Network is a network namespace of the target's own, from both sides.
type Network struct {
	Inside   []Link `json:"inside"`
	HostEnds []Link `json:"host_ends"`
}

// Link is one interface: ip link and ip -4 addr in one.
type Link struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Up    bool     `json:"up"`
	Addrs []string `json:"addrs"`
}

func linkOf(l netns.Link) Link {
	out := Link{Name: l.Name, Kind: l.Kind, Up: l.Up, Addrs: []string{}}
	for _, a := range l.Addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	return out
}

func pidLinks(pid int) ([]netns.Link, error) {
	f, err := netns.Of(pid)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return netns.Links(f)
}

// readNetwork lists the target's interfaces and, among the host's, the
// other ends of its veth pairs (each end names the other by IFLA_LINK).
func readNetwork(src Sources, pid, ref int) *Network {
	inside, err := src.Links(pid)
	if err != nil {
		return nil
	}
	host, _ := src.Links(ref)
	n := &Network{Inside: []Link{}, HostEnds: []Link{}}
	for _, in := range inside {
		n.Inside = append(n.Inside, linkOf(in))
		for _, h := range host {
			if in.Kind == "veth" && h.Kind == "veth" && h.Index == in.Peer && h.Peer == in.Index {
				n.HostEnds = append(n.HostEnds, linkOf(h))
			}
		}
	}
	return n
}

// Target is the process inspected.
type Target struct {
	PID       int    `json:"pid"`
	Name      string `json:"name,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Command   string `json:"command"`
	StartTime uint64 `json:"start_time"`
}

// Label is how the text output names the target.
func (t Target) Label() string {
	if t.Name != "" {
		return t.Name
	}
	return fmt.Sprintf("PID %d", t.PID)
}

// HostInfo is what the host itself looks like.
type HostInfo struct {
	PID          int    `json:"pid"`
	Note         string `json:"note,omitempty"`
	Hostname     string `json:"hostname"`
	Processes    int    `json:"processes"`
	Mounts       int    `json:"mounts"`
	CgroupLayout string `json:"cgroup_layout"`
}

// Processes is the target's PID namespace.
type Processes struct {
	HostCount      int       `json:"host_count"`
	ContainerCount int       `json:"container_count"`
	Unreadable     int       `json:"unreadable"`
	SharedWithHost bool      `json:"shared_with_host"`
	List           []Process `json:"list"`
}

// Process is one process of the target's PID namespace.
type Process struct {
	HostPID  int    `json:"host_pid"`
	PID      int    `json:"pid"`
	PPID     int    `json:"ppid"`
	HostPPID int    `json:"host_ppid"`
	Command  string `json:"command"`
	Exited   bool   `json:"exited"`
}

// Namespace compares one namespace type between the host and the target.
type Namespace struct {
	Type      string `json:"type"`
	HostInode uint64 `json:"host_inode"` // 0: not readable, or not in this kernel
	Inode     uint64 `json:"inode"`
	Isolated  bool   `json:"isolated"`
	Isolates  string `json:"isolates"`
}

// Filesystem is the target's root and mount table.
type Filesystem struct {
	Root           string  `json:"root"`
	MountCount     int     `json:"mount_count"`
	HostMountCount int     `json:"host_mount_count"`
	Hostname       string  `json:"hostname"`
	HostnameSource string  `json:"hostname_source"`
	Mounts         []Mount `json:"mounts"`
}

// Mount is one line of the target's mountinfo.
type Mount struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
}

// Where HostnameSource says the hostname came from.
const (
	HostnameFromHost = "host" // the same UTS namespace as the host
	HostnameFromLab  = "lab"  // what 'underhood run' set; not read
)

// isolates says in a few words what each namespace type gives its own copy of.
var isolates = map[string]string{
	"cgroup": "the view of the cgroup tree (its root)",
	"ipc":    "System V IPC objects, POSIX message queues",
	"mnt":    "the mount table",
	"net":    "network devices, addresses, ports, routes",
	"pid":    "process IDs",
	"time":   "the boot-time and monotonic clocks",
	"user":   "user and group IDs, capabilities",
	"uts":    "the hostname and domain name",
}

// procfs is what the inspector reads; proc.Root is it, and tests wrap it to
// make reads fail as they do on a real host.
type procfs interface {
	PIDs() ([]int, error)
	NS(pid int, typ string) (uint64, error)
	Summary(pid int) (proc.Summary, error)
	Cmdline(pid int) (string, error)
	Link(pid int, name string) (string, error)
	StartTime(pid int) (uint64, error)
	State(pid int) (string, error)
	Path(pid int, name ...string) string
}

// gone reports whether err means the process is not there any more.
func gone(err error) bool {
	return errors.Is(err, proc.ErrExited) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// ended reports whether pid is not (any more) a live process that started
// at start (start 0: any). A dying process fails reads in odd ways, such as
// EINVAL for mountinfo once its namespaces are released: those mean it
// exited, not that something is wrong.
func ended(p procfs, pid int, start uint64) bool {
	st, err := p.StartTime(pid)
	if err != nil || (start != 0 && st != start) {
		return true
	}
	s, err := p.State(pid)
	return err != nil || s == "Z" || s == "X"
}

// nsSet is a process's namespaces by type; 0 means unknown.
type nsSet map[string]uint64

func readNS(p procfs, pid int) (nsSet, error) {
	s := make(nsSet, len(proc.NSTypes))
	for _, t := range proc.NSTypes {
		ino, err := p.NS(pid, t)
		switch {
		case errors.Is(err, proc.ErrNoNamespace):
			continue
		case err != nil:
			return nil, err
		}
		s[t] = ino
	}
	return s, nil
}

// hostRef finds the process whose namespaces are the host's: PID 1, or
// kthreadd (PID 2, the kernel's thread starter, always in the first
// namespaces) when PID 1 cannot be read, as on hosts that protect their
// init even from root.
func hostRef(p procfs) (int, nsSet, string, error) {
	ns, err := readNS(p, 1)
	if err == nil {
		return 1, ns, "", nil
	}
	if !errors.Is(err, fs.ErrPermission) {
		return 0, nil, "", fmt.Errorf("read the host's namespaces: %w", err)
	}
	if s, serr := p.Summary(2); serr == nil && s.Name == "kthreadd" && s.PPid == 0 {
		if ns2, err2 := readNS(p, 2); err2 == nil {
			return 2, ns2, "PID 1 is not readable here (permission denied), so the host's namespaces are those of PID 2, kthreadd: a kernel thread, always in the first namespaces", nil
		}
	}
	return 0, nil, "", fmt.Errorf("read the host's namespaces: %w", err)
}

func (src Sources) now() time.Time {
	if src.Now == nil {
		return time.Now()
	}
	return src.Now()
}

func (src Sources) hostname() string {
	if src.Hostname == nil {
		return ""
	}
	h, err := src.Hostname()
	if err != nil {
		return ""
	}
	return h
}

func (src Sources) lab(pid int) (Lab, bool) {
	for _, l := range src.Lab {
		if l.PID == pid && pid > 0 {
			return l, true
		}
	}
	return Lab{}, false
}

// Inspect takes one snapshot of the process with host PID pid. A PID with
// no process is a *NoProcessError; a process that cannot be read without
// root gives an error matching fs.ErrPermission. A target that ends while
// it is read gives what was read with Exited set, not an error.
func Inspect(src Sources, pid int) (*Report, error) {
	return inspect(src.Proc, src, pid)
}

func inspect(p procfs, src Sources, pid int) (*Report, error) {
	if pid <= 0 {
		return nil, &NoProcessError{PID: pid}
	}
	r := &Report{Time: src.now(), Target: Target{PID: pid}}
	start, err := p.StartTime(pid)
	if err != nil {
		if gone(err) {
			return nil, &NoProcessError{PID: pid}
		}
		return nil, err
	}
	r.Target.StartTime = start
	if l, ok := src.lab(pid); ok {
		r.Target.Name, r.Target.Kind = l.Name, l.Kind
	}

	ref, refNS, note, err := hostRef(p)
	if err != nil {
		return nil, err
	}
	r.Host = HostInfo{PID: ref, Note: note, Hostname: src.hostname(), CgroupLayout: string(src.Cgroups.Layout)}

	tNS, err := readNS(p, pid)
	if err != nil {
		if gone(err) || ended(p, pid, start) {
			return nil, &NoProcessError{PID: pid}
		}
		return nil, fmt.Errorf("inspect PID %d: %w", pid, err)
	}
	for _, t := range proc.NSTypes {
		h, hok := refNS[t]
		c, cok := tNS[t]
		if !hok && !cok {
			continue
		}
		r.Namespaces = append(r.Namespaces, Namespace{Type: t, HostInode: h, Inode: c,
			Isolated: h != c, Isolates: isolates[t]})
	}

	if src.Links != nil && tNS["net"] != 0 && tNS["net"] != refNS["net"] {
		r.Network = readNetwork(src, pid, ref)
	}

	if err := readProcesses(p, r, pid, ref, tNS["pid"], refNS["pid"]); err != nil {
		if ended(p, pid, start) {
			return nil, &NoProcessError{PID: pid}
		}
		return nil, err
	}
	r.Host.Processes = r.Processes.HostCount
	for _, pr := range r.Processes.List {
		if pr.HostPID == pid {
			r.Target.Command = pr.Command
			r.Exited = r.Exited || pr.Exited
		}
	}

	mounts, err := mount.Read(p.Path(pid, "mountinfo"))
	switch {
	// EINVAL: a process in the middle of exiting (its namespaces already
	// released, not yet a zombie), as after an OOM kill; a live one never
	// fails so.
	case err != nil && (gone(err) || errors.Is(err, syscall.EINVAL) || ended(p, pid, start)):
		r.Exited = true
	case err != nil:
		return nil, err
	}
	hostMounts, err := mount.Read(p.Path(ref, "mountinfo"))
	if err == nil {
		r.Host.Mounts = len(hostMounts)
	}
	r.Filesystem = Filesystem{MountCount: len(mounts), HostMountCount: r.Host.Mounts, Mounts: []Mount{}}
	for _, m := range mounts {
		r.Filesystem.Mounts = append(r.Filesystem.Mounts, Mount{Mountpoint: m.Mountpoint, FSType: m.FSType, Source: m.Source})
	}
	if root, err := p.Link(pid, "root"); err == nil {
		r.Filesystem.Root = root
	} else if gone(err) || ended(p, pid, start) {
		r.Exited = true
	} else {
		return nil, fmt.Errorf("inspect PID %d: %w", pid, err)
	}
	switch {
	case tNS["uts"] != 0 && tNS["uts"] == refNS["uts"]:
		r.Filesystem.Hostname, r.Filesystem.HostnameSource = r.Host.Hostname, HostnameFromHost
	case r.Target.Kind == "run":
		r.Filesystem.Hostname, r.Filesystem.HostnameSource = r.Target.Name, HostnameFromLab
	}

	cg, err := readCgroup(p, src.Cgroups, pid, tNS["cgroup"] == refNS["cgroup"], mounts, hostMounts)
	switch {
	case err != nil && (gone(err) || ended(p, pid, start)):
		r.Exited = true
	case err != nil:
		return nil, err
	}
	r.Cgroup = cg

	if ended(p, pid, start) {
		r.Exited = true
	}
	if r.Exited {
		// Its cgroup may be gone, and a dead one reads as the root.
		r.Cgroup = nil
	}
	return r, nil
}

// readProcesses lists the processes whose PID namespace is the target's:
// the ones the container sees (those of PID namespaces nested inside it
// aside). Each one's ns/pid link is read once; status and cmdline only for
// the members.
func readProcesses(p procfs, r *Report, pid, ref int, tPID, refPID uint64) error {
	pids, err := p.PIDs()
	if err != nil {
		return err
	}
	pr := &r.Processes
	pr.SharedWithHost = tPID == refPID
	pr.List = []Process{}
	var members []int
	for _, q := range pids {
		ino, err := tPID, error(nil)
		switch q {
		case pid:
		case ref:
			ino = refPID
		default:
			ino, err = p.NS(q, "pid")
		}
		switch {
		case err != nil && gone(err):
			continue
		case err != nil:
			pr.HostCount++
			pr.Unreadable++
			continue
		}
		pr.HostCount++
		if ino == tPID {
			members = append(members, q)
		}
	}
	inner := make(map[int]int, len(members))
	for _, q := range members {
		row := Process{HostPID: q}
		s, err := p.Summary(q)
		if err == nil {
			row.Command, err = p.Cmdline(q)
		}
		switch {
		case err != nil && (gone(err) || ended(p, q, 0)):
			row.Exited, row.Command = true, "(exited)"
		case err != nil:
			return fmt.Errorf("inspect PID %d: %w", pid, err)
		default:
			row.PID, row.HostPPID = s.Inner(), s.PPid
			inner[q] = row.PID
			pr.ContainerCount++
			if q == pid {
				r.Privileges = privilegesOf(s)
			}
		}
		pr.List = append(pr.List, row)
	}
	for i := range pr.List {
		if pr.SharedWithHost {
			pr.List[i].PPID = pr.List[i].HostPPID
			continue
		}
		// The kernel shows a parent outside the namespace as 0 inside.
		pr.List[i].PPID = inner[pr.List[i].HostPPID]
	}
	slices.SortFunc(pr.List, func(a, b Process) int { return a.HostPID - b.HostPID })
	return nil
}
