package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/proc"
)

// The host's first namespaces, as on a real machine.
var hostNS = map[string]uint64{
	"cgroup": 4026531835, "ipc": 4026531839, "mnt": 4026531832, "net": 4026531833,
	"pid": 4026531836, "time": 4026531834, "user": 4026531837, "uts": 4026531838,
}

// withNS is the host's namespaces with some replaced.
func withNS(own map[string]uint64) map[string]uint64 {
	m := map[string]uint64{}
	for k, v := range hostNS {
		m[k] = v
	}
	for k, v := range own {
		m[k] = v
	}
	return m
}

// fakeProcess is one /proc/PID directory of a fixture.
type fakeProcess struct {
	pid, ppid int
	nspid     []int // nil: just pid
	name      string
	argv      []string // nil: a kernel thread
	start     uint64
	ns        map[string]uint64 // nil: the host's
	root      string            // "": "/"
	cgroup    string
	mountinfo string
	// noStatus leaves out status and cmdline: a process that exited after
	// its namespace was read.
	noStatus bool
	status   string // more lines of status: capabilities, no_new_privs, seccomp
	state    string // "": S (sleeping)
}

// fixture is a fake /proc and cgroup tree in a temporary directory.
type fixture struct {
	t    *testing.T
	dir  string
	proc proc.Root
	cg   cgroup.Host
}

func newFixture(t *testing.T, layout cgroup.Layout) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, proc: proc.Root(filepath.Join(dir, "proc"))}
	root := filepath.Join(dir, "cgroup")
	switch layout {
	case cgroup.V1:
		f.cg = cgroup.Host{Root: root, Layout: cgroup.V1, MemoryRoot: filepath.Join(root, "memory"), MemoryVersion: 1}
	case cgroup.Hybrid:
		f.cg = cgroup.Host{Root: root, Layout: cgroup.Hybrid, MemoryRoot: filepath.Join(root, "memory"), MemoryVersion: 1,
			Unified: filepath.Join(root, "unified")}
	case cgroup.V2:
		f.cg = cgroup.Host{Root: root, Layout: cgroup.V2, MemoryRoot: root, MemoryVersion: 2, Unified: root}
	default:
		f.cg = cgroup.Host{Root: root, Layout: cgroup.None}
	}
	return f
}

func (f *fixture) write(path, body string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) symlink(target, path string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) add(p fakeProcess) {
	f.t.Helper()
	d := filepath.Join(string(f.proc), fmt.Sprint(p.pid))
	state := p.state
	if state == "" {
		state = "S"
	}
	f.write(filepath.Join(d, "stat"), fmt.Sprintf("%d (%s) %s %d %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %d 1000 10\n",
		p.pid, p.name, state, p.ppid, p.pid, p.pid, p.start))
	ns := p.ns
	if ns == nil {
		ns = hostNS
	}
	for t, ino := range ns {
		f.symlink(fmt.Sprintf("%s:[%d]", t, ino), filepath.Join(d, "ns", t))
	}
	root := p.root
	if root == "" {
		root = "/"
	}
	f.symlink(root, filepath.Join(d, "root"))
	f.write(filepath.Join(d, "comm"), p.name+"\n")
	f.write(filepath.Join(d, "cgroup"), p.cgroup)
	f.write(filepath.Join(d, "mountinfo"), p.mountinfo)
	if p.noStatus {
		return
	}
	nspid := p.nspid
	if nspid == nil {
		nspid = []int{p.pid}
	}
	ids := make([]string, len(nspid))
	for i, n := range nspid {
		ids[i] = fmt.Sprint(n)
	}
	f.write(filepath.Join(d, "status"), fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\t%s (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nNSpid:\t%s\n",
		p.name, state, p.pid, p.pid, p.ppid, strings.Join(ids, "\t"))+p.status)
	cmd := ""
	if p.argv != nil {
		cmd = strings.Join(p.argv, "\x00") + "\x00"
	}
	f.write(filepath.Join(d, "cmdline"), cmd)
}

// cgfile writes a control file below the memory hierarchy (or below the
// cgroup root, with an absolute rel).
func (f *fixture) cgfile(rel, name, body string) {
	f.write(filepath.Join(f.cg.MemoryRoot, rel, name), body)
}

// The privileges of root in step 7's container (all of them) and in a
// Docker container (its fourteen, its seccomp profile).
const (
	rootCaps   = "CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
	dockerCaps = "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\n"
)

var fixedTime = time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC)

func (f *fixture) sources(lab ...Lab) Sources {
	return Sources{Proc: f.proc, Cgroups: f.cg, Lab: lab,
		Hostname: func() (string, error) { return "vm", nil },
		Now:      func() time.Time { return fixedTime }}
}

// clean hides the temporary directory in output compared with goldens.
func (f *fixture) clean(s string) string { return strings.ReplaceAll(s, f.dir, "/fixture") }

const hostMountinfo = `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup rw,memory
28 22 0:5 / /dev rw,nosuid,relatime shared:6 - devtmpfs udev rw,size=4000k
29 22 0:26 / /run rw,nosuid,nodev,noexec,relatime shared:7 - tmpfs tmpfs rw,size=800k
`

const hybridHostCgroup = `9:name=systemd:/init.scope
8:pids:/init.scope
4:memory:/init.scope
0::/init.scope
`

// hybridLab is a Debian 12 VM with a cgroup v1 memory controller and
// cgroup2 at unified: systemd, kthreadd, sshd, and a lab container "insp"
// started by 'underhood run' (PID, mount and UTS namespaces of its own,
// chrooted, proc and three devices mounted), with a child.
func hybridLab(t *testing.T) *fixture {
	f := newFixture(t, cgroup.Hybrid)
	f.add(fakeProcess{pid: 1, name: "systemd", argv: []string{"/sbin/init"}, start: 10, cgroup: hybridHostCgroup, mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 2, name: "kthreadd", start: 10, cgroup: "4:memory:/\n0::/\n", mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 612, ppid: 1, name: "sshd", argv: []string{"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"}, start: 900,
		cgroup: "4:memory:/system.slice/ssh.service\n0::/system.slice/ssh.service\n", mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 4230, ppid: 612, name: "underhood", argv: []string{"underhood", "run", "--name", "insp", "--", "/bin/busybox", "sh", "-c", "busybox sleep 30 & wait"}, start: 52000,
		cgroup: "4:memory:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n", mountinfo: hostMountinfo})
	own := withNS(map[string]uint64{"mnt": 4026532180, "uts": 4026532181, "pid": 4026532182})
	const labCgroup = "9:name=systemd:/user.slice/user-0.slice/session-1.scope\n8:pids:/underhood/insp\n7:cpu,cpuacct:/underhood/insp\n4:memory:/underhood/insp\n0::/user.slice/user-0.slice/session-1.scope\n"
	const labMounts = `612 598 0:63 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
613 598 0:5 /null /dev/null rw,nosuid,relatime shared:6 - devtmpfs udev rw,size=4000k
614 598 0:5 /zero /dev/zero rw,nosuid,relatime shared:6 - devtmpfs udev rw,size=4000k
615 598 0:5 /urandom /dev/urandom rw,nosuid,relatime shared:6 - devtmpfs udev rw,size=4000k
`
	root := "/var/lib/underhood/runs/insp/rootfs"
	f.add(fakeProcess{pid: 4242, ppid: 4230, nspid: []int{4242, 1}, name: "busybox", argv: []string{"/bin/busybox", "sh", "-c", "busybox sleep 30 & wait"},
		start: 52010, ns: own, root: root, cgroup: labCgroup, mountinfo: labMounts, status: rootCaps})
	f.add(fakeProcess{pid: 4250, ppid: 4242, nspid: []int{4250, 2}, name: "busybox", argv: []string{"busybox", "sleep", "30"},
		start: 52011, ns: own, root: root, cgroup: labCgroup, mountinfo: labMounts})
	f.cgfile("underhood/insp", "memory.limit_in_bytes", "7340032\n")
	f.cgfile("underhood/insp", "memory.usage_in_bytes", "1204224\n")
	f.cgfile("underhood/insp", "memory.max_usage_in_bytes", "1441792\n")
	f.cgfile("underhood/insp", "memory.failcnt", "0\n")
	f.cgfile("underhood/insp", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
	f.cgfile("underhood/insp", "tasks", "4242\n4250\n")
	pids, cpu := filepath.Join(f.cg.Root, "pids", "underhood", "insp"), filepath.Join(f.cg.Root, "cpu,cpuacct", "underhood", "insp")
	f.write(filepath.Join(pids, "pids.current"), "2\n")
	f.write(filepath.Join(pids, "pids.max"), "1024\n")
	f.write(filepath.Join(pids, "pids.events"), "max 0\n")
	f.write(filepath.Join(cpu, "cpu.cfs_quota_us"), "-1\n")
	f.write(filepath.Join(cpu, "cpu.cfs_period_us"), "100000\n")
	f.write(filepath.Join(cpu, "cpu.stat"), "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n")
	return f
}

func (f *fixture) hybridSources() Sources {
	return f.sources(Lab{Name: "insp", Kind: "run", PID: 4242})
}

// hybridEight is hybridLab with a process tree in a fresh namespace of
// each of the eight types, as 'unshare --mount --uts --ipc --pid --fork
// --net --user --cgroup --time sh -c "sleep 0 & exec sleep 60"' makes it,
// at PIDs near the kernel's largest: unshare in six of its own (it makes
// the pid and time ones for its child), its child in all eight, and that
// one's zombie, whose links lead nowhere but for pid and user (the procfs
// returned makes them so).
func hybridEight(t *testing.T) (*fixture, procfs) {
	f := hybridLab(t)
	mine := map[string]uint64{"mnt": 4026532250, "uts": 4026532251, "ipc": 4026532252, "net": 4026532253,
		"user": 4026532254, "cgroup": 4026532255}
	argv := []string{"unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--net", "--user", "--cgroup", "--time",
		"sh", "-c", "sleep 0 & exec sleep 60"}
	const cg = "4:memory:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n"
	f.add(fakeProcess{pid: 4194000, ppid: 612, name: "unshare", argv: argv, start: 60000, ns: withNS(mine), cgroup: cg, mountinfo: hostMountinfo})
	mine["pid"], mine["time"] = 4026532256, 4026532257
	f.add(fakeProcess{pid: 4194001, ppid: 4194000, nspid: []int{4194001, 1}, name: "sleep", argv: []string{"sleep", "60"}, start: 60001,
		ns: withNS(mine), cgroup: cg, mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 4194002, ppid: 4194001, nspid: []int{4194002, 2}, name: "sleep", argv: []string{}, start: 60002,
		ns: withNS(mine), cgroup: cg, state: "Z"})
	zombie := string(f.proc) + "/4194002/ns/"
	return f, hookFS{Root: f.proc, released: func(p string) bool {
		return strings.HasPrefix(p, zombie) && !strings.HasSuffix(p, "/pid") && !strings.HasSuffix(p, "/user")
	}}
}

// v2Docker is a cgroup v2 host running a Docker container with a private
// cgroup namespace (Docker's default on v2): nginx and a worker.
func v2Docker(t *testing.T) *fixture {
	f := newFixture(t, cgroup.V2)
	hostMounts := strings.ReplaceAll(hostMountinfo, "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
	f.add(fakeProcess{pid: 1, name: "systemd", argv: []string{"/sbin/init"}, start: 10, cgroup: "0::/init.scope\n", mountinfo: hostMounts})
	f.add(fakeProcess{pid: 2, name: "kthreadd", start: 10, cgroup: "0::/\n", mountinfo: hostMounts})
	f.add(fakeProcess{pid: 880, ppid: 1, name: "dockerd", argv: []string{"/usr/bin/dockerd", "-H", "fd://"}, start: 700,
		cgroup: "0::/system.slice/docker.service\n", mountinfo: hostMounts})
	f.add(fakeProcess{pid: 1280, ppid: 1, name: "containerd-shim", argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "abc123"}, start: 3000,
		cgroup: "0::/system.slice/containerd.service\n", mountinfo: hostMounts})
	own := withNS(map[string]uint64{"cgroup": 4026532300, "ipc": 4026532301, "mnt": 4026532302, "pid": 4026532303, "net": 4026532305, "uts": 4026532304})
	const cg = "0::/system.slice/docker-abc123.scope\n"
	const mounts = `740 620 0:70 / / rw,relatime master:9 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
741 740 0:73 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
742 740 0:74 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
750 740 0:30 /system.slice/docker-abc123.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
751 740 254:1 /var/lib/docker/containers/abc123/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
`
	root := "/var/lib/docker/overlay2/3f2a/merged"
	f.add(fakeProcess{pid: 1300, ppid: 1280, nspid: []int{1300, 1}, name: "nginx", argv: []string{"nginx: master process nginx -g daemon off;"},
		start: 3010, ns: own, root: root, cgroup: cg, mountinfo: mounts, status: dockerCaps})
	f.add(fakeProcess{pid: 1329, ppid: 1300, nspid: []int{1329, 29}, name: "nginx", argv: []string{"nginx: worker process"},
		start: 3020, ns: own, root: root, cgroup: cg, mountinfo: mounts})
	d := "system.slice/docker-abc123.scope"
	f.cgfile(d, "memory.max", "268435456\n")
	f.cgfile(d, "memory.current", "5349376\n")
	f.cgfile(d, "memory.peak", "7733248\n")
	f.cgfile(d, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")
	f.cgfile(d, "memory.swap.max", "max\n")
	f.cgfile(d, "cgroup.procs", "1300\n1329\n")
	f.cgfile(d, "pids.current", "2\n")
	f.cgfile(d, "pids.max", "64\n")
	f.cgfile(d, "pids.events", "max 4711\n")
	f.cgfile(d, "cpu.max", "20000 100000\n")
	f.cgfile(d, "cpu.stat", "usage_usec 801234\nuser_usec 790000\nsystem_usec 11234\nnr_periods 12\nnr_throttled 10\nthrottled_usec 797521\n")
	return f
}

// v1Chroot is an all-v1 host with the chroot container: a chrooted shell
// that shares every namespace with the host, in no cgroup of its own.
func v1Chroot(t *testing.T) *fixture {
	f := newFixture(t, cgroup.V1)
	f.add(fakeProcess{pid: 1, name: "systemd", argv: []string{"/sbin/init"}, start: 10, cgroup: "4:memory:/\n", mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 2, name: "kthreadd", start: 10, cgroup: "4:memory:/\n", mountinfo: hostMountinfo})
	f.add(fakeProcess{pid: 700, ppid: 1, name: "underhood", argv: []string{"underhood", "chroot"}, start: 4000,
		cgroup: "4:memory:/user.slice\n", mountinfo: hostMountinfo})
	// Chrooted into a directory with nothing mounted below: every mount is
	// outside its root, so its mountinfo is empty.
	f.add(fakeProcess{pid: 701, ppid: 700, name: "busybox", argv: []string{"/bin/busybox", "sh"}, start: 4001,
		root: "/var/lib/underhood/rootfs", cgroup: "4:memory:/user.slice\n", mountinfo: ""})
	f.cgfile("user.slice", "memory.limit_in_bytes", "9223372036854771712\n")
	f.cgfile("user.slice", "memory.usage_in_bytes", "379584512\n")
	f.cgfile("user.slice", "memory.max_usage_in_bytes", "912404480\n")
	f.cgfile("user.slice", "memory.failcnt", "0\n")
	f.cgfile("user.slice", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
	f.cgfile("user.slice", "tasks", "700\n701\n")
	return f
}
