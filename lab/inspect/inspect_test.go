package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/lab/ui/ptytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./lab/inspect -update' to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./lab/inspect -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// runOnce renders one snapshot as text and as JSON, colour off.
func runOnce(t *testing.T, f *fixture, src Sources, pid int) (string, string) {
	t.Helper()
	var text, js, errb bytes.Buffer
	if err := Run(context.Background(), ui.Buffers(nil, &text, &errb), src, Options{PID: pid}); err != nil {
		t.Fatalf("text: %v", err)
	}
	if err := Run(context.Background(), ui.Buffers(nil, &js, &errb), src, Options{PID: pid, JSON: true}); err != nil {
		t.Fatalf("json: %v", err)
	}
	return f.clean(text.String()), f.clean(js.String())
}

func TestGolden(t *testing.T) {
	for _, c := range []struct {
		name    string
		fixture func(*testing.T) *fixture
		lab     bool
		pid     int
	}{
		{"hybrid-lab", hybridLab, true, 4242},
		{"hybrid-overview", hybridLab, true, 0},
		{"v2-docker", v2Docker, false, 1300},
		{"v2-overview", v2Docker, false, 0},
		{"v1-chroot", v1Chroot, false, 701},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.fixture(t)
			src := f.sources()
			if c.lab {
				src = f.hybridSources()
			}
			text, js := runOnce(t, f, src, c.pid)
			golden(t, c.name+".txt", text)
			golden(t, c.name+".json", js)
		})
	}
}

// The JSON field names are an interface: every documented one is there.
func TestJSONFieldNames(t *testing.T) {
	f := hybridLab(t)
	r, err := Inspect(f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"time", "exited", "target.pid", "target.name", "target.command", "target.start_time",
		"host.pid", "host.hostname", "host.processes", "host.mounts", "host.cgroup_layout",
		"processes.host_count", "processes.container_count", "processes.unreadable", "processes.shared_with_host", "processes.list",
		"namespaces", "cgroup.version", "cgroup.hierarchy", "cgroup.host_path", "cgroup.container_path", "cgroup.container_view",
		"cgroup.dir", "cgroup.limit_bytes", "cgroup.usage_bytes", "cgroup.peak_bytes", "cgroup.oom_kills", "cgroup.files",
		"filesystem.root", "filesystem.mount_count", "filesystem.host_mount_count", "filesystem.hostname",
		"filesystem.hostname_source", "filesystem.mounts",
	} {
		var cur any = m
		for _, k := range strings.Split(path, ".") {
			obj, _ := cur.(map[string]any)
			v, ok := obj[k]
			if !ok {
				t.Errorf("JSON lacks %s", path)
				break
			}
			cur = v
		}
	}
	for _, want := range []string{`"host_pid":4242,"pid":1,"ppid":0,"host_ppid":4230`, `"type":"pid","host_inode":4026531836,"inode":4026532182,"isolated":true`,
		`"mountpoint":"/proc","fstype":"proc","source":"proc"`, `"name":"memory.limit_in_bytes","value":"7340032","bytes":7340032,"human":"7.0 MiB"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestLabContainer(t *testing.T) {
	f := hybridLab(t)
	r, err := Inspect(f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target.Name != "insp" || r.Processes.ContainerCount != 2 || r.Processes.HostCount != 6 || r.Exited {
		t.Errorf("target %+v, %d in container, %d on host, exited %v", r.Target, r.Processes.ContainerCount, r.Processes.HostCount, r.Exited)
	}
	want := []Process{
		{HostPID: 4242, PID: 1, PPID: 0, HostPPID: 4230, Command: "/bin/busybox sh -c busybox sleep 30 & wait"},
		{HostPID: 4250, PID: 2, PPID: 1, HostPPID: 4242, Command: "busybox sleep 30"},
	}
	if len(r.Processes.List) != 2 || r.Processes.List[0] != want[0] || r.Processes.List[1] != want[1] {
		t.Errorf("processes %+v, want %+v", r.Processes.List, want)
	}
	iso := map[string]bool{}
	for _, n := range r.Namespaces {
		if n.Isolated {
			iso[n.Type] = true
		}
	}
	if len(r.Namespaces) != 8 || len(iso) != 3 || !iso["pid"] || !iso["mnt"] || !iso["uts"] {
		t.Errorf("namespaces %+v", r.Namespaces)
	}
	c := r.Cgroup
	if c == nil || c.HostPath != "/underhood/insp" || c.ContainerPath != "/underhood/insp" || c.LimitBytes != 7340032 ||
		c.UsageBytes != 1204224 || c.PeakBytes != 1441792 || c.OOMKills != 0 || c.Dir != filepath.Join(f.cg.MemoryRoot, "underhood/insp") {
		t.Errorf("cgroup %+v", c)
	}
	if r.Filesystem.Hostname != "insp" || r.Filesystem.HostnameSource != HostnameFromLab || r.Filesystem.MountCount != 4 || r.Filesystem.HostMountCount != 8 {
		t.Errorf("filesystem %+v", r.Filesystem)
	}
}

// With its own cgroup namespace, the path inside starts at the root of
// the cgroup mount the container sees.
func TestCgroupNamespaceView(t *testing.T) {
	f := v2Docker(t)
	r, err := Inspect(f.sources(), 1329)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Cgroup
	if c.HostPath != "/system.slice/docker-abc123.scope" || c.ContainerPath != "/" || c.Version != 2 || c.LimitBytes != 268435456 {
		t.Errorf("cgroup %+v", c)
	}
	for _, k := range []struct{ path, root, want string }{
		{"/a/b/c", "/a/b", "/c"}, {"/a/b", "/a/b", "/"}, {"/a/x", "/a/b", "/../x"}, {"/a", "/", "/a"},
	} {
		if got := relCgroup(k.path, k.root); got != k.want {
			t.Errorf("relCgroup(%q, %q) = %q, want %q", k.path, k.root, got, k.want)
		}
	}
	if p, why := containerView("/x", 2, false, nil, nil); p != "" || !strings.Contains(why, "cannot be seen") {
		t.Errorf("no cgroup mount: %q %q", p, why)
	}
	// unshare -C -m without a new root: it still sees the host's cgroup
	// mount (root /), which says nothing; the one it made itself does.
	host := mount.Info{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", FSType: "cgroup", SuperOption: "rw,memory"}
	own := mount.Info{Mountpoint: "/mnt", Root: "/user.slice", FSType: "cgroup", SuperOption: "rw,memory"}
	if p, _ := containerView("/user.slice/box", 1, false, []mount.Info{host, own}, []mount.Info{host}); p != "/box" {
		t.Errorf("with an inherited and an own mount: %q, want /box", p)
	}
	if p, _ := containerView("/user.slice/box", 1, false, []mount.Info{host}, []mount.Info{host}); p != "" {
		t.Errorf("with only the inherited mount: %q, want unknown", p)
	}
}

func TestNoProcess(t *testing.T) {
	f := hybridLab(t)
	for _, pid := range []int{99999, 0, -3} {
		_, err := Inspect(f.hybridSources(), pid)
		var np *NoProcessError
		if !errors.As(err, &np) || err.Error() != "no process "+itoa(pid) {
			t.Errorf("pid %d: %v, want no process", pid, err)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A member of the namespace that exits between the namespace scan and the
// read of its status is listed as exited, not counted, and nothing panics.
func TestMemberExitsMidRead(t *testing.T) {
	f := hybridLab(t)
	own := withNS(map[string]uint64{"mnt": 4026532180, "uts": 4026532181, "pid": 4026532182})
	f.add(fakeProcess{pid: 4260, ppid: 4242, name: "busybox", start: 52020, ns: own, noStatus: true})
	r, err := Inspect(f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	last := r.Processes.List[len(r.Processes.List)-1]
	if last.HostPID != 4260 || !last.Exited || r.Processes.ContainerCount != 2 || r.Exited {
		t.Errorf("list %+v, count %d, target exited %v", r.Processes.List, r.Processes.ContainerCount, r.Exited)
	}
	var out bytes.Buffer
	Write(ui.Buffers(nil, &out, &out), r)
	if !strings.Contains(out.String(), "4260      -           -              -               (exited)") {
		t.Errorf("exited row not shown:\n%s", out.String())
	}
}

// hookFS wraps the fixture's procfs: deny makes reads of matching paths
// fail as the kernel does for another user's process; after runs once a
// given call has been made.
type hookFS struct {
	proc.Root
	deny    func(path string) bool
	summary func(pid int)
	// released makes a namespace link lead nowhere, as a zombie's do once
	// the kernel has released those namespaces.
	released func(path string) bool
}

func (h hookFS) denied(pid int, name ...string) error {
	p := h.Path(pid, name...)
	if h.deny != nil && h.deny(p) {
		return &fs.PathError{Op: "readlink", Path: p, Err: fs.ErrPermission}
	}
	return nil
}

func (h hookFS) NS(pid int, typ string) (uint64, error) {
	if err := h.denied(pid, "ns", typ); err != nil {
		return 0, err
	}
	if p := h.Path(pid, "ns", typ); h.released != nil && h.released(p) {
		return 0, fmt.Errorf("read %s: %w", p, proc.ErrExited)
	}
	return h.Root.NS(pid, typ)
}

func (h hookFS) Summary(pid int) (proc.Summary, error) {
	if h.summary != nil {
		h.summary(pid)
	}
	return h.Root.Summary(pid)
}

// PID 1 protected even from root (as in some sandboxes): kthreadd stands in.
func TestHostFallsBackToKthreadd(t *testing.T) {
	f := hybridLab(t)
	h := hookFS{Root: f.proc, deny: func(p string) bool { return strings.Contains(p, "/proc/1/") }}
	r, err := inspect(h, f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if r.Host.PID != 2 || !strings.Contains(r.Host.Note, "kthreadd") || r.Processes.Unreadable != 1 || r.Processes.HostCount != 6 {
		t.Errorf("host %+v, unreadable %d, host count %d", r.Host, r.Processes.Unreadable, r.Processes.HostCount)
	}
	ov, err := overview(h, f.hybridSources())
	if err != nil {
		t.Fatal(err)
	}
	if ov.Host.PID != 2 || ov.Unreadable != 1 || ov.Namespaces[0].PID != 2 {
		t.Errorf("overview host %+v, unreadable %d, first %+v", ov.Host, ov.Unreadable, ov.Namespaces[0])
	}
}

// A zombie is counted, as lsns counts it, in the namespaces whose links
// still lead somewhere: its pid and user ones (the kernel keeps its PID
// and credentials until it is reaped, and releases the others at exit). A
// process gone altogether while it was read is not counted at all.
func TestOverviewCountsZombies(t *testing.T) {
	f := hybridLab(t)
	own := withNS(map[string]uint64{"mnt": 4026532180, "uts": 4026532181, "pid": 4026532182})
	f.add(fakeProcess{pid: 4260, ppid: 4250, name: "busybox", argv: []string{}, start: 52020, ns: own, state: "Z"})
	f.add(fakeProcess{pid: 4270, ppid: 612, name: "sshd", argv: []string{"sshd: root [priv]"}, start: 52030})
	h := hookFS{Root: f.proc, released: func(p string) bool {
		return strings.Contains(p, "/proc/4270/") ||
			strings.Contains(p, "/proc/4260/") && !strings.HasSuffix(p, "/pid") && !strings.HasSuffix(p, "/user")
	}}
	ov, err := overview(h, f.hybridSources())
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for _, n := range ov.Namespaces {
		got[n.Inode] = n.NProcs
	}
	want := map[uint64]int{
		4026532182: 3, 4026532180: 2, 4026532181: 2, // the lab's pid, mnt, uts
		hostNS["user"]: 7, hostNS["ipc"]: 6, hostNS["pid"]: 4, hostNS["mnt"]: 4,
	}
	for ino, n := range want {
		if got[ino] != n {
			t.Errorf("namespace %d: %d processes, want %d (all: %v)", ino, got[ino], n, got)
		}
	}
	if ov.Zombies != 1 || ov.Unreadable != 0 || ov.Host.Processes != 7 {
		t.Errorf("zombies %d, unreadable %d, processes %d; want 1, 0, 7", ov.Zombies, ov.Unreadable, ov.Host.Processes)
	}
	var out bytes.Buffer
	WriteOverview(ui.Buffers(nil, &out, &out), ov)
	if !strings.Contains(out.String(), "(1 process is a zombie: ") {
		t.Errorf("the overview does not say why pid and user count one more:\n%s", out.String())
	}
}

// The host overview on a terminal: the table, a namespace of each of the
// eight types for the host and for a process tree, fits the width with its
// columns lined up, and the prose wraps between words, at 80 and 120
// columns (80 kept as a golden); piped, nothing is wrapped (TestGolden).
func TestOverviewFitsTerminal(t *testing.T) {
	f, p := hybridEight(t)
	ov, err := overview(p, f.hybridSources())
	if err != nil {
		t.Fatal(err)
	}
	var piped bytes.Buffer
	WriteOverview(ui.Buffers(nil, &piped, &piped), ov)
	// What follows the table: "19 namespaces: …".
	prose := func(s string) []string {
		return strings.Fields(s[strings.Index(s, fmt.Sprintf("\n%d namespaces:", len(ov.Namespaces)))+1:])
	}
	for _, width := range []int{80, 120} {
		var out bytes.Buffer
		o := ui.Buffers(nil, &out, &out)
		o.Width = width
		WriteOverview(o, ov)
		got := out.String()
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		for _, l := range lines {
			if w := ui.Width(l); w > width {
				t.Errorf("%d columns: a line %d wide: %q", width, w, l)
			}
		}
		ptytest.CheckColumns(t, lines, "NS", "TYPE", "NPROCS", "PID", "COMMAND", "OWNER")
		// The rows (NS, TYPE, NPROCS, PID) of the host's eight and the tree's.
		rows := []string{
			"4026532250  mnt     2       4194000", "4026532251  uts     2       4194000", "4026532252  ipc     2       4194000",
			"4026532253  net     2       4194000", "4026532254  user    3       4194000", "4026532255  cgroup  2       4194000",
			"4026532256  pid     2       4194001", "4026532257  time    1       4194001",
		}
		for typ, ino := range hostNS { // the fixture's eight, not proc.NSTypes
			rows = append(rows, fmt.Sprintf("%d  %-6s  ", ino, typ))
		}
		for _, row := range rows {
			if !strings.Contains(got, "\n"+row) {
				t.Errorf("%d columns: no row %q:\n%s", width, row, got)
			}
		}
		if !slices.Equal(prose(got), prose(piped.String())) {
			t.Errorf("%d columns: the prose is not the piped one wrapped:\n%s", width, got)
		}
		if width == 80 {
			golden(t, "hybrid-eight-overview-80.txt", got)
		}
	}
}

// Without root nothing but one's own processes is readable: the error says
// permission, for the command to say root is needed.
func TestNeedsRoot(t *testing.T) {
	f := hybridLab(t)
	h := hookFS{Root: f.proc, deny: func(p string) bool { return strings.Contains(p, "/ns/") }}
	if _, err := inspect(h, f.hybridSources(), 4242); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("inspect: %v, want a permission error", err)
	}
	if _, err := overview(h, f.hybridSources()); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("overview: %v, want a permission error", err)
	}
	// Only the target is unreadable.
	h.deny = func(p string) bool { return strings.Contains(p, "/proc/4242/ns/") }
	if _, err := inspect(h, f.hybridSources(), 4242); !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "4242") {
		t.Errorf("inspect: %v, want a permission error naming 4242", err)
	}
}

// The target itself ends while it is read: what was read, marked exited.
func TestTargetExitsMidRead(t *testing.T) {
	f := hybridLab(t)
	h := hookFS{Root: f.proc, summary: func(pid int) {
		if pid == 4242 {
			os.RemoveAll(f.proc.Path(4242))
			os.RemoveAll(f.proc.Path(4250))
		}
	}}
	r, err := inspect(h, f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exited || len(r.Processes.List) != 2 || !r.Processes.List[0].Exited {
		t.Errorf("exited %v, list %+v", r.Exited, r.Processes.List)
	}
	var out bytes.Buffer
	Write(ui.Buffers(nil, &out, &out), r)
	if !strings.Contains(out.String(), "It exited while it was being read") {
		t.Errorf("no exit note:\n%s", out.String())
	}
}

// A dying process fails reads oddly (mountinfo gives EINVAL once its
// namespaces are gone): that is an exit, not an error.
func TestTargetDyingIsExited(t *testing.T) {
	f := hybridLab(t)
	h := hookFS{Root: f.proc, summary: func(pid int) {
		if pid != 4250 {
			return
		}
		stat := f.proc.Path(4242, "stat")
		b, _ := os.ReadFile(stat)
		f.write(stat, strings.Replace(string(b), ") S ", ") Z ", 1))
		mi := f.proc.Path(4242, "mountinfo")
		os.Remove(mi)
		os.Mkdir(mi, 0o755) // reading it fails, as a dying process's does
	}}
	r, err := inspect(h, f.hybridSources(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exited || r.Cgroup != nil {
		t.Errorf("exited %v, cgroup %+v: want exited without a cgroup reading", r.Exited, r.Cgroup)
	}
}

// Without a memory controller the cgroup section says so.
func TestNoMemoryController(t *testing.T) {
	f := hybridLab(t)
	src := f.hybridSources()
	src.Cgroups = cgroup.Host{Root: f.cg.Root, Layout: cgroup.None}
	r, err := Inspect(src, 4242)
	if err != nil || r.Cgroup != nil {
		t.Fatalf("%v, cgroup %+v", err, r.Cgroup)
	}
	var out bytes.Buffer
	Write(ui.Buffers(nil, &out, &out), r)
	if !strings.Contains(out.String(), "No memory controller on this host (cgroup layout none)") {
		t.Errorf("no note:\n%s", out.String())
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		k          keyFile
		v, human   string
		bytes      int64 // -1: nil
		flatOutput string
	}{
		{keyFile{name: "memory.limit_in_bytes", kind: kSize}, "7340032", "7.0 MiB", 7340032, "7340032"},
		{keyFile{name: "memory.limit_in_bytes", kind: kSize}, "9223372036854771712", "no limit", -1, "9223372036854771712"},
		{keyFile{name: "memory.max", kind: kSize}, "max", "no limit", -1, "max"},
		{keyFile{name: "pids.max", kind: kSize}, "64", "64 processes", -1, "64"},
		{keyFile{name: "tasks", kind: kPIDs, unit: "task"}, "1\n2", "2 tasks", -1, "1, 2"},
		{keyFile{name: "cgroup.procs", kind: kPIDs, unit: "process"}, "1", "1 process", -1, "1"},
		{keyFile{name: "tasks", kind: kPIDs, unit: "task"}, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10", "10 tasks", -1, "1 2 3 4 5 6 7 8 … (10 in all)"},
		{keyFile{name: "memory.oom_control", kind: kKeyed}, "oom_kill_disable 0\nunder_oom 1\noom_kill 2", "", -1, "oom_kill_disable 0, under_oom 1, oom_kill 2"},
	} {
		cf := describe(c.k, c.v)
		gotBytes := int64(-1)
		if cf.Bytes != nil {
			gotBytes = *cf.Bytes
		}
		if cf.Human != c.human || gotBytes != c.bytes || flat(cf.Value) != c.flatOutput {
			t.Errorf("%s %q: human %q bytes %d flat %q", c.k.name, c.v, cf.Human, gotBytes, flat(cf.Value))
		}
	}
	if n, ok := keyed("oom_kill_disable 0\nunder_oom 1\noom_kill 2", "oom_kill"); !ok || n != 2 {
		t.Errorf("keyed oom_kill = %d %v", n, ok)
	}
}

// A network namespace of the target's own is shown from both sides: its
// interfaces, and the host's end of its veth pair (matched both ways by
// IFLA_LINK; a veth of the host's that leads elsewhere is not it).
func TestNetworkBothSides(t *testing.T) {
	f := v2Docker(t)
	src := f.sources()
	p := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	src.Links = func(pid int) ([]netns.Link, error) {
		switch pid {
		case 1300:
			return []netns.Link{{Index: 1, Name: "lo", Up: true, Addrs: p("127.0.0.1/8")},
				{Index: 2, Name: "eth0", Kind: "veth", Up: true, Peer: 9, Addrs: p("10.200.7.2/30")}}, nil
		case 1:
			return []netns.Link{{Index: 1, Name: "lo", Up: true}, {Index: 8, Name: "veth-other", Kind: "veth", Up: true, Peer: 5},
				{Index: 9, Name: "uh-0a1b2c3d4e", Kind: "veth", Up: true, Peer: 2, Addrs: p("10.200.7.1/30")}}, nil
		}
		return nil, errors.New("no such process")
	}
	r, err := Inspect(src, 1300)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Network; n == nil || len(n.Inside) != 2 || len(n.HostEnds) != 1 || n.HostEnds[0].Name != "uh-0a1b2c3d4e" ||
		n.HostEnds[0].Addrs[0] != "10.200.7.1/30" || n.Inside[1].Addrs[0] != "10.200.7.2/30" {
		t.Fatalf("network %+v", r.Network)
	}
	var out bytes.Buffer
	Write(ui.Buffers(nil, &out, &out), r)
	for _, want := range []string{"SIDE", "inside  eth0", "host    uh-0a1b2c3d4e  veth  UP     10.200.7.1/30"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	// Sharing the host's network namespace: no section.
	h := hybridLab(t)
	hs := h.hybridSources()
	hs.Links = src.Links
	if r, err := Inspect(hs, 4242); err != nil || r.Network != nil {
		t.Errorf("shared network: %v, %+v", err, r.Network)
	}
}
