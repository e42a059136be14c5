package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"golang.org/x/sys/unix"
)

// machine describes a fixture host: a /proc tree, a cgroup tree with fake
// statfs answers, and a work directory.
type machine struct {
	release    string
	missingNS  []string
	swaps      string            // /proc/swaps
	mountinfo  string            // the line for /
	sysctls    map[string]string // relative to /proc/sys
	selfCgroup string
	fsTypes    map[string]int64  // relative to the cgroup root
	files      map[string]string // relative to the cgroup root
	procFiles  map[string]string // relative to /proc
	sysFiles   map[string]string // relative to /sys
	rootFiles  map[string]string // relative to /: /.dockerenv, /etc/wsl.conf
	machine    string            // uname -m; "" is x86_64
	goarch     string            // "" is amd64
	noSudo     bool
}

const (
	noSwap   = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	withSwap = noSwap + "/swapfile                               file\t\t2097148\t\t0\t\t-2\n"
	private  = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	shared   = "25 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
)

func (m machine) options(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	proc, cg, wd := filepath.Join(dir, "proc"), filepath.Join(dir, "cgroup"), filepath.Join(dir, "work")
	sys, root := filepath.Join(dir, "sys"), filepath.Join(dir, "root")
	put := func(path, content string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(filepath.Join(proc, "sys/kernel/osrelease"), m.release+"\n")
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"} {
		if !slices.Contains(m.missingNS, ns) {
			put(filepath.Join(proc, "self/ns", ns), "")
		}
	}
	put(filepath.Join(proc, "swaps"), m.swaps)
	put(filepath.Join(proc, "self/mountinfo"), "22 27 0:21 / /proc rw - proc proc rw\n"+m.mountinfo)
	put(filepath.Join(proc, "self/cgroup"), m.selfCgroup)
	for k, v := range m.sysctls {
		put(filepath.Join(proc, "sys", k), v+"\n")
	}
	for k, v := range m.procFiles {
		put(filepath.Join(proc, k), v)
	}
	for k, v := range m.sysFiles {
		put(filepath.Join(sys, k), v)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range m.rootFiles {
		put(filepath.Join(root, k), v)
	}
	for rel := range m.fsTypes {
		if err := os.MkdirAll(filepath.Join(cg, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for rel, v := range m.files {
		put(filepath.Join(cg, rel), v)
	}
	fsType := func(p string) (int64, error) {
		rel, _ := filepath.Rel(cg, p)
		if v, ok := m.fsTypes[rel]; ok {
			return v, nil
		}
		if _, err := os.Stat(p); err != nil {
			return 0, &fs.PathError{Op: "statfs", Path: p, Err: syscall.ENOENT}
		}
		return 0xef53, nil
	}
	lookPath := func(file string) (string, error) {
		if file == "sudo" && !m.noSudo {
			return "/usr/bin/sudo", nil
		}
		return "", &fs.PathError{Op: "lookpath", Path: file, Err: fs.ErrNotExist}
	}
	machine, goarch := m.machine, m.goarch
	if machine == "" {
		machine = "x86_64"
	}
	if goarch == "" {
		goarch = "amd64"
	}
	return Options{ProcRoot: proc, CgroupRoot: cg, SysRoot: sys, FileRoot: root, Workdir: state.Workdir{Root: wd},
		Euid: 1000, Probe: true, FSType: fsType, Words: testWords, Machine: machine, GOARCH: goarch, LookPath: lookPath}
}

// testWords stand for the workshop's names, which doctor takes as given.
var testWords = Words{RootSteps: "<root steps>", MemoryStep: "<memory step>", DownloadStep: "<download step>",
	Doctor: "<doctor as root>", Download: "<download>"}

func hybridHost() machine {
	return machine{
		release:    "6.1.0-18-amd64",
		swaps:      withSwap,
		mountinfo:  shared,
		sysctls:    map[string]string{"user/max_user_namespaces": "63477", "kernel/apparmor_restrict_unprivileged_userns": "1"},
		selfCgroup: "4:memory:/user.slice\n0::/user.slice\n",
		fsTypes: map[string]int64{".": unix.TMPFS_MAGIC, "unified": unix.CGROUP2_SUPER_MAGIC,
			"memory": unix.CGROUP_SUPER_MAGIC, "pids": unix.CGROUP_SUPER_MAGIC},
		files: map[string]string{
			"unified/cgroup.controllers":         "hugetlb\n",
			"memory/memory.memsw.limit_in_bytes": "9223372036854771712\n",
		},
	}
}

func statuses(r Report) map[string]ui.Level {
	out := map[string]ui.Level{}
	for _, c := range r.Checks {
		out[c.Check] = c.Status
	}
	return out
}

func find(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Check == name {
			return c
		}
	}
	t.Fatalf("no check %q in %v", name, r.Checks)
	return Check{}
}

// wantRows checks the status of the named rows, and that every row that is
// not OK says what to do while OK rows say nothing.
func wantRows(t *testing.T, r Report, want map[string]ui.Level) {
	t.Helper()
	got := statuses(r)
	for name, l := range want {
		if got[name] != l {
			t.Errorf("%s: %s, want %s (%s)", name, got[name], l, find(t, r, name).Detail)
		}
	}
	for _, c := range r.Checks {
		if (c.Status == ui.OK) != (c.Hint == "") {
			t.Errorf("%s: status %s with hint %q", c.Check, c.Status, c.Hint)
		}
		if c.Detail == "" {
			t.Errorf("%s: no detail", c.Check)
		}
	}
}

func TestRunHybrid(t *testing.T) {
	r := Run(hybridHost().options(t))
	if r.Layout != cgroup.Hybrid || r.MemoryVersion != 1 || !strings.HasSuffix(r.MemoryRoot, "/cgroup/memory") || !strings.HasSuffix(r.Unified, "/cgroup/unified") {
		t.Errorf("layout fields: %+v", r)
	}
	wantRows(t, r, map[string]ui.Level{
		"running as root":     ui.Warn,
		"kernel":              ui.OK,
		"namespace pid":       ui.OK,
		"namespace time":      ui.OK,
		"cgroup layout":       ui.OK,
		"memory controller":   ui.OK,
		"create a cgroup":     ui.Warn,
		"swap":                ui.OK,
		"propagation of /":    Info,
		"busybox":             ui.Warn,
		"unprivileged userns": ui.Warn,
		"veth pair":           ui.Warn,
	})
	if len(r.Checks) != 20 {
		t.Errorf("%d checks, want 20", len(r.Checks))
	}
	if c := find(t, r, "veth pair"); c.Detail != "not tested: needs root" {
		t.Errorf("veth row %+v", c)
	}
	if c := find(t, r, "cgroup layout"); !strings.HasPrefix(c.Detail, "hybrid: ") || !strings.Contains(c.Detail, "(hugetlb)") {
		t.Errorf("layout detail %q", c.Detail)
	}
	if c := find(t, r, "create a cgroup"); c.Detail != "not tested: needs root" || c.Hint != "run it as root: <doctor as root>" {
		t.Errorf("probe row %+v", c)
	}
	if c := find(t, r, "swap"); !strings.Contains(c.Detail, "on (2.0 GiB on 1 device)") || !strings.Contains(c.Detail, "memory.memsw.limit_in_bytes exists") {
		t.Errorf("swap detail %q", c.Detail)
	}
	if c := find(t, r, "busybox"); c.Hint != "<download>, or <download> --from /bin/busybox" || !strings.HasSuffix(c.Detail, ": <download step> fetches it") {
		t.Errorf("busybox row %+v", c)
	}
	if c := find(t, r, "running as root"); c.Detail != "uid 1000: doctor can only look, not try; <root steps> need root" ||
		c.Hint != "<doctor as root> (and sudo for <root steps>)" {
		t.Errorf("root row %+v", c)
	}
	o := hybridHost().options(t)
	o.Words = Words{}
	for _, c := range Run(o).Checks {
		text := c.Detail + " " + c.Hint
		for _, w := range []string{testWords.RootSteps, testWords.MemoryStep, testWords.DownloadStep, testWords.Doctor, testWords.Download} {
			if strings.Contains(text, w) {
				t.Errorf("without words, row %+v says %q", c, w)
			}
		}
		if strings.Contains(text, "  ") || strings.Contains(text, ": ,") {
			t.Errorf("without words, row %+v", c)
		}
	}
	c := find(t, r, "unprivileged userns")
	if !strings.Contains(c.Detail, "apparmor_restrict_unprivileged_userns=1") || !strings.Contains(c.Detail, "not affected") ||
		!strings.Contains(c.Hint, "kernel.apparmor_restrict_unprivileged_userns=0") {
		t.Errorf("userns row %+v", c)
	}
	if r.Warnings != 5 || r.Failures != 0 {
		t.Errorf("%d warnings, %d failures; want 5, 0", r.Warnings, r.Failures)
	}
	if s := r.Summary(); s != "5 warnings, 0 failures: this machine can run the lab." {
		t.Errorf("summary %q", s)
	}
}

func TestRunV1(t *testing.T) {
	m := machine{
		release:   "4.9.0-13-amd64",
		swaps:     withSwap,
		mountinfo: private,
		sysctls:   map[string]string{"kernel/unprivileged_userns_clone": "0", "user/max_user_namespaces": "0"},
		fsTypes: map[string]int64{".": unix.TMPFS_MAGIC, "memory": unix.CGROUP_SUPER_MAGIC,
			"cpu,cpuacct": unix.CGROUP_SUPER_MAGIC},
	}
	r := Run(m.options(t))
	if r.Layout != cgroup.V1 || r.MemoryVersion != 1 || r.Unified != "" {
		t.Errorf("layout fields: %+v", r)
	}
	wantRows(t, r, map[string]ui.Level{
		"kernel":              ui.Warn,
		"cgroup layout":       ui.OK,
		"memory controller":   ui.OK,
		"swap":                ui.Warn,
		"propagation of /":    ui.OK,
		"unprivileged userns": ui.Warn,
	})
	if c := find(t, r, "kernel"); !strings.Contains(c.Detail, "no oom_kill counter") {
		t.Errorf("kernel detail %q", c.Detail)
	}
	c := find(t, r, "swap")
	if !strings.Contains(c.Detail, "may swap instead of being killed") || !strings.Contains(c.Hint, "swapoff -a") || !strings.Contains(c.Hint, "swapaccount=1") {
		t.Errorf("swap row %+v", c)
	}
	if c := find(t, r, "unprivileged userns"); !strings.Contains(c.Detail, "root included") {
		t.Errorf("max_user_namespaces=0 restricts root too: %q", c.Detail)
	}
}

func TestRunV2(t *testing.T) {
	base := machine{
		release:    "6.8.0-31-generic",
		swaps:      withSwap,
		mountinfo:  shared,
		selfCgroup: "0::/user.slice/user-1000.slice/session-2.scope\n",
		fsTypes:    map[string]int64{".": unix.CGROUP2_SUPER_MAGIC},
		files: map[string]string{
			"cgroup.controllers":                    "cpuset cpu io memory hugetlb pids rdma misc\n",
			"user.slice/user-1000.slice/memory.max": "max\n",
		},
	}
	t.Run("swap limitable", func(t *testing.T) {
		m := base
		m.files = map[string]string{"user.slice/user-1000.slice/memory.swap.max": "max\n"}
		for k, v := range base.files {
			m.files[k] = v
		}
		r := Run(m.options(t))
		if r.Layout != cgroup.V2 || r.MemoryVersion != 2 || r.MemoryRoot != r.CgroupRoot || r.Unified != r.CgroupRoot {
			t.Errorf("layout fields: %+v", r)
		}
		wantRows(t, r, map[string]ui.Level{"cgroup layout": ui.OK, "memory controller": ui.OK, "swap": ui.OK})
		if c := find(t, r, "memory controller"); !strings.Contains(c.Detail, "memory.max") {
			t.Errorf("memory detail %q", c.Detail)
		}
	})
	t.Run("swap not limitable", func(t *testing.T) {
		r := Run(base.options(t))
		wantRows(t, r, map[string]ui.Level{"swap": ui.Warn})
		if c := find(t, r, "swap"); !strings.Contains(c.Detail, "no memory.swap.max") {
			t.Errorf("swap detail %q", c.Detail)
		}
	})
	t.Run("swap unknown", func(t *testing.T) {
		m := base
		m.files = map[string]string{"cgroup.controllers": "memory pids\n"}
		r := Run(m.options(t))
		wantRows(t, r, map[string]ui.Level{"swap": ui.Warn})
		if c := find(t, r, "swap"); !strings.Contains(c.Hint, "<doctor as root>") {
			t.Errorf("swap hint %q", c.Hint)
		}
	})
	t.Run("swap off", func(t *testing.T) {
		m := base
		m.swaps = noSwap
		wantRows(t, Run(m.options(t)), map[string]ui.Level{"swap": ui.OK})
	})
}

func TestRunFailures(t *testing.T) {
	m := machine{
		release:   "3.2.0-4-amd64",
		missingNS: []string{"pid", "time", "cgroup"},
		swaps:     noSwap,
		mountinfo: private,
		fsTypes:   map[string]int64{".": unix.CGROUP2_SUPER_MAGIC},
		files:     map[string]string{"cgroup.controllers": "cpu io pids\n"},
	}
	o := m.options(t)
	r := Run(o)
	wantRows(t, r, map[string]ui.Level{
		"kernel":            ui.Fail,
		"namespace pid":     ui.Fail,
		"namespace time":    ui.Warn,
		"namespace cgroup":  ui.Warn,
		"namespace mnt":     ui.OK,
		"cgroup layout":     ui.OK,
		"memory controller": ui.Fail,
		"create a cgroup":   ui.Warn,
	})
	if c := find(t, r, "memory controller"); !strings.Contains(c.Hint, "cgroup_enable=memory") || !strings.Contains(c.Detail, "<memory step> cannot limit memory") {
		t.Errorf("memory hint %q", c.Hint)
	}
	if r.Failures != 3 {
		t.Errorf("%d failures, want 3", r.Failures)
	}
	var out bytes.Buffer
	err := r.Print(ui.Buffers(nil, &out, io.Discard), false)
	var ee *ui.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || ui.Message(err) != "" {
		t.Errorf("Print = %v, want exit 1 without a message", err)
	}
	if !strings.HasSuffix(out.String(), "failures: fix the FAIL rows above before the workshop.\n") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestRunNothingMounted(t *testing.T) {
	m := hybridHost()
	m.fsTypes = map[string]int64{".": 0x62656572} // sysfs
	m.files = nil
	r := Run(m.options(t))
	if r.Layout != cgroup.None {
		t.Errorf("layout %s", r.Layout)
	}
	wantRows(t, r, map[string]ui.Level{"cgroup layout": ui.Fail, "memory controller": ui.Fail, "create a cgroup": ui.Warn, "swap": ui.Warn})
}

// As root on a fixture tree the probe runs for real against it; the fake
// tree has no kernel to fill in control files, so Create fails, and the row
// must say why and leave nothing behind.
func TestRunProbeFailure(t *testing.T) {
	o := hybridHost().options(t)
	o.Euid = 0
	r := Run(o)
	c := find(t, r, "create a cgroup")
	if c.Status != ui.Fail || !strings.HasPrefix(c.Detail, "set memory limit: open "+filepath.Join(o.CgroupRoot, "memory/underhood/doctor-")) ||
		!strings.HasSuffix(c.Detail, "/memory.limit_in_bytes: no such file or directory") || c.Hint == "" {
		t.Errorf("probe row %+v", c)
	}
	if _, err := os.Stat(filepath.Join(o.CgroupRoot, "memory", "underhood")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the probe left its parent behind: %v", err)
	}
	if statuses(r)["running as root"] != ui.OK {
		t.Error("root row not OK for euid 0")
	}
}

func TestRunProbeOff(t *testing.T) {
	o := hybridHost().options(t)
	o.Euid, o.Probe = 0, false
	if c := find(t, Run(o), "create a cgroup"); c.Status != ui.Warn || c.Detail != "not tested: the probe is turned off" {
		t.Errorf("probe row %+v", c)
	}
}

func TestBusybox(t *testing.T) {
	run := func(t *testing.T, setup func(path string)) Check {
		o := hybridHost().options(t)
		if err := os.MkdirAll(o.Workdir.Root, 0o755); err != nil {
			t.Fatal(err)
		}
		setup(o.Workdir.Busybox())
		return find(t, Run(o), "busybox")
	}
	t.Run("static busybox", func(t *testing.T) {
		src, err := os.ReadFile("/bin/busybox")
		if err != nil {
			t.Skip("requires /bin/busybox (Debian's busybox-static) to copy")
		}
		c := run(t, func(p string) {
			if err := os.WriteFile(p, src, 0o755); err != nil {
				t.Fatal(err)
			}
		})
		if c.Status != ui.OK || !strings.HasPrefix(c.Detail, "BusyBox v") || !strings.Contains(c.Detail, "static") {
			t.Errorf("row %+v", c)
		}
	})
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"a script", "#!/bin/sh\necho BusyBox v9\n", 0o755, "is not a Linux program"},
		{"not executable", "x", 0o644, "is not an executable file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := run(t, func(p string) {
				if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
			})
			if c.Status != ui.Warn || !strings.Contains(c.Detail, tc.want) || !strings.Contains(c.Hint, "<download>") {
				t.Errorf("row %+v", c)
			}
		})
	}
}

func TestPrintText(t *testing.T) {
	r := Report{Checks: []Check{
		{Check: "running as root", Status: ui.OK, Detail: "uid 0"},
		{Check: "busybox", Status: ui.Warn, Detail: "missing", Hint: "download it"},
		{Check: "propagation of /", Status: Info, Detail: "shared", Hint: "nothing to do"},
	}, Warnings: 1}
	var out bytes.Buffer
	if err := r.Print(ui.Buffers(nil, &out, io.Discard), false); err != nil {
		t.Fatal(err)
	}
	want := "CHECK             STATUS  DETAIL\n" +
		"running as root   OK      uid 0\n" +
		"busybox           WARN    missing\n" +
		"propagation of /  INFO    shared\n" +
		"\nWhat to do:\n" +
		"  busybox: download it\n" +
		"  propagation of /: nothing to do\n" +
		"\n1 warning, 0 failures: this machine can run the lab.\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestPrintJSON(t *testing.T) {
	o := hybridHost().options(t)
	var out bytes.Buffer
	if err := Run(o).Print(ui.Buffers(nil, &out, io.Discard), true); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"cgroup_root", "checks", "failures", "layout", "memory_root", "memory_version", "unified", "warnings"}
	if !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	var checks []map[string]string
	if err := json.Unmarshal(doc["checks"], &checks); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if len(c) != 4 || c["check"] == "" || c["status"] == "" || c["detail"] == "" {
			t.Errorf("check %v: want exactly check, status, detail, hint", c)
		}
	}
	if string(doc["layout"]) != `"hybrid"` || string(doc["memory_version"]) != "1" {
		t.Errorf("layout %s, memory_version %s", doc["layout"], doc["memory_version"])
	}
}
