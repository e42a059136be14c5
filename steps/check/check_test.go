package check

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixture is a machine on disk: a work directory, a root filesystem made by
// hand, a /proc tree and a cgroup tree with fake statfs answers. Every path
// in a report is printed relative to its top, as $T.
type fixture struct {
	t      *testing.T
	top    string
	env    Env
	types  map[string]int64 // cgroup tree, relative path: statfs magic
	tries  map[ProbeKind]string
	errors map[ProbeKind]error
	mounts []string // mountinfo lines, $T for the top
	// pivoted are the /proc/PID/root paths from which a walk up never
	// reaches the host's root; from the others the real walk runs.
	pivoted map[string]bool
}

const (
	noSwap   = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	withSwap = noSwap + "/swapfile                               file\t\t2097148\t\t0\t\t-2\n"
	psHost   = "PID   USER     COMMAND\n    1 0        /sbin/init\n    2 0        [kthreadd]\n  812 0        /bin/busybox ps -A\n"
	psAlone  = "PID   USER     COMMAND\n    1 0        /bin/busybox ps -A\n"
)

// newFixture is a machine where every step is done the underhood way:
// BusyBox downloaded, the root filesystem prepared, cgroup v1, no swap.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	top := t.TempDir()
	f := &fixture{t: t, top: top,
		types: map[string]int64{".": unix.TMPFS_MAGIC, "memory": unix.CGROUP_SUPER_MAGIC, "pids": unix.CGROUP_SUPER_MAGIC, "cpu": unix.CGROUP_SUPER_MAGIC},
		tries: map[ProbeKind]string{TryHello: "Hello from BusyBox!\n", TryChroot: "bin\ndev\netc\nproc\nsys\n", TryProc: psHost, TryPIDNamespace: psAlone, TryCgroup: "made $T/cgroup/memory/underhood/check-0a1b2c3d with memory.limit_in_bytes = 7340032, and removed it",
			TryPivot: "bin\ndev\netc\nproc\nsys\n", TryLimits: "made $T/cgroup/memory/underhood/check-0a1b2c3d with pids.max = 64 and 20 % of one CPU, and removed it"},
		pivoted: map[string]bool{},
		errors:  map[ProbeKind]error{},
		mounts:  []string{"22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw", "23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw"},
	}
	w := state.Workdir{Root: filepath.Join(top, "lab")}
	f.env = Env{Workdir: w, Busybox: w.Busybox(), Rootfs: w.Rootfs(),
		ProcRoot: filepath.Join(top, "proc"), CgroupRoot: filepath.Join(top, "cgroup"), ScriptDir: filepath.Join(top, "tmp", "container"),
		Cgroup: "busybox", Limit: 7340032, Euid: 0,
		LookPath: func(string) (string, error) { return "/usr/bin/unshare", nil }}
	f.env.FSType = f.fsType
	f.env.Try = f.try
	f.env.Climb = func(dir string) (bool, error) {
		if f.pivoted[dir] {
			return false, nil
		}
		return ClimbsToHost(dir)
	}
	f.elf(w.Busybox(), false)
	f.tree(w.Rootfs())
	f.put("proc/swaps", noSwap)
	f.put("proc/self/ns/pid", "")
	f.link("mnt:[4026531841]", "proc/self/ns/mnt")
	f.mkdir("cgroup/memory")
	f.mkdir("cgroup/pids")
	f.mkdir("cgroup/cpu")
	f.put("cgroup/memory/cgroup.procs", "1\n")
	return f
}

// byHand points the checks at ~/container, made with the article's commands.
func (f *fixture) byHand() *fixture {
	f.env.Rootfs = filepath.Join(f.top, "home", "container")
	f.env.Busybox = filepath.Join(f.top, "home", "Downloads", "busybox")
	f.env.ByHand = true
	f.elf(f.env.Busybox, false)
	f.tree(f.env.Rootfs)
	return f
}

func (f *fixture) path(rel string) string { return filepath.Join(f.top, rel) }

func (f *fixture) put(rel, content string) {
	f.t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) link(target, rel string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(rel))
	if err := os.Symlink(target, f.path(rel)); err != nil {
		f.t.Fatal(err)
	}
}

// shell is a process whose root is the root filesystem: its own mount
// namespace unless ns is the host's, its status lines, and its mount table
// ($R for the root filesystem).
func (f *fixture) shell(pid int, ns, status string, mounts ...string) {
	d := fmt.Sprintf("proc/%d", pid)
	f.put(d+"/comm", "busybox\n")
	f.link(f.env.Rootfs, d+"/root")
	f.link(ns, d+"/ns/mnt")
	f.put(d+"/status", "Name:\tbusybox\n"+status)
	f.put(d+"/mountinfo", strings.ReplaceAll(strings.ReplaceAll(strings.Join(mounts, "\n")+"\n", "$R", f.env.Rootfs), "$T", f.top))
}

// pivot marks process pid as pivoted: a walk up from its root stays in it.
func (f *fixture) pivot(pid int) { f.pivoted[f.path(fmt.Sprintf("proc/%d/root", pid))] = true }

func (f *fixture) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) rm(p string) {
	f.t.Helper()
	if !filepath.IsAbs(p) {
		p = f.path(p)
	}
	if err := os.RemoveAll(p); err != nil {
		f.t.Fatal(err)
	}
}

// tree makes the article's layout at dir with a static bin/busybox.
func (f *fixture) tree(dir string) {
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.t.Fatal(err)
		}
	}
	f.elf(filepath.Join(dir, "bin", "busybox"), false)
}

// elf writes the smallest ELF executable for this machine that debug/elf
// reads: a header and one PT_LOAD, plus a PT_INTERP when dynamic.
func (f *fixture) elf(path string, dynamic bool) {
	f.t.Helper()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "riscv64": elf.EM_RISCV,
		"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "loong64": elf.EM_LOONGARCH}
	m, ok := machines[runtime.GOARCH]
	if !ok {
		f.t.Skipf("no fixture ELF for %s", runtime.GOARCH)
	}
	interp := []byte("/lib64/ld-linux-x86-64.so.2\x00")
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: 0x400000, Paddr: 0x400000, Filesz: 200, Memsz: 200, Align: 0x1000}}
	if dynamic {
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: 64 + 56*2, Filesz: uint64(len(interp)), Memsz: uint64(len(interp)), Align: 1})
	}
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: 1, Entry: 0x400078,
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs))}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	order := binary.ByteOrder(binary.LittleEndian)
	if runtime.GOARCH == "s390x" {
		h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
		order = binary.BigEndian
	}
	var b bytes.Buffer
	_ = binary.Write(&b, order, h)
	for _, p := range progs {
		_ = binary.Write(&b, order, p)
	}
	if dynamic {
		b.Write(interp)
	}
	for b.Len() < 200 {
		b.WriteByte(0)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) fsType(p string) (int64, error) {
	rel, _ := filepath.Rel(f.env.CgroupRoot, p)
	if v, ok := f.types[rel]; ok {
		return v, nil
	}
	if _, err := os.Stat(p); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: p, Err: syscall.ENOENT}
	}
	return unix.TMPFS_MAGIC, nil
}

func (f *fixture) try(p Probe) (string, error) {
	if err := f.errors[p.Kind]; err != nil {
		return "", err
	}
	return strings.ReplaceAll(f.tries[p.Kind], "$T", f.top), nil
}

// v2 turns the cgroup tree into one unified cgroup2 hierarchy.
func (f *fixture) v2() *fixture {
	f.rm("cgroup")
	f.types = map[string]int64{".": unix.CGROUP2_SUPER_MAGIC}
	f.put("cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
	f.put("cgroup/cgroup.subtree_control", "memory pids\n")
	f.put("cgroup/cgroup.procs", "1\n")
	f.tries[TryCgroup] = "made $T/cgroup/underhood/check-0a1b2c3d with memory.max = 7340032, and removed it"
	return f
}

// handCgroup is the article's cgroup after its test: the limit set, one
// OOM kill, nobody left in it.
func (f *fixture) handCgroup() *fixture {
	if f.types["."] == unix.CGROUP2_SUPER_MAGIC {
		f.put("cgroup/busybox/memory.max", "7340032\n")
		f.put("cgroup/busybox/memory.swap.max", "max\n")
		f.put("cgroup/busybox/memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
		f.put("cgroup/busybox/cgroup.procs", "")
		return f
	}
	f.put("cgroup/memory/busybox/memory.limit_in_bytes", "7340032\n")
	f.put("cgroup/memory/busybox/memory.memsw.limit_in_bytes", "9223372036854771712\n")
	f.put("cgroup/memory/busybox/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	f.put("cgroup/memory/busybox/cgroup.procs", "")
	f.put("cgroup/memory/busybox/tasks", "")
	return f
}

func (f *fixture) write() {
	f.put("proc/self/mountinfo", strings.ReplaceAll(strings.Join(f.mounts, "\n")+"\n", "$T", f.top))
}

func (f *fixture) report(n int, title string, run func(Env) []Item) Report {
	f.write()
	return NewReport(n, title, "the fixture", run(f.env), "the next step", fmt.Sprintf("sudo underhood check %d", n))
}

// text renders a report with colour off, paths relative to $T.
func (f *fixture) text(r Report, asJSON bool) (string, int) {
	var out bytes.Buffer
	err := r.Print(ui.Buffers(nil, &out, &out), asJSON)
	return strings.ReplaceAll(out.String(), f.top, "$T"), ui.ExitCode(err)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
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
		t.Fatalf("%v (run go test ./steps/check -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./steps/check -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

type stage struct {
	n     int
	title string
	run   func(Env) []Item
}

var (
	stage1 = stage{1, "Download BusyBox", Busybox}
	stage2 = stage{2, "Prepare the root filesystem", Layout}
	stage3 = stage{3, "Change the root directory", Chroot}
	stage4 = stage{4, "Mount /proc and see the host's processes", Proc}
	stage5 = stage{5, "Isolate processes with a PID namespace", PIDNamespace}
	stage6 = stage{6, "Limit memory with a cgroup", MemoryCgroup}
	stage7 = stage{7, "Put it all together: a full container", Leftovers}
	stage8 = stage{8, "pivot_root: why chroot is not a jail", PivotRoot}
	stage9 = stage{9, "More limits: processes and CPU", Limits}
	stageX = stage{10, "Fewer privileges: capabilities and seccomp", Privileges}
)

const (
	ownNS      = "mnt:[4026532176]"
	hostNS     = "mnt:[4026531841]"
	fullRoot   = "CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
	byCapsh    = "CapInh:\t0000000020000420\nCapPrm:\t0000000020000420\nCapEff:\t0000000020000420\nCapBnd:\t0000000000000000\nCapAmb:\t0000000020000420\nNoNewPrivs:\t1\nSeccomp:\t0\n"
	newRoot    = "121 71 8:2 $R / rw,relatime - ext4 /dev/sda2 rw"
	newProc    = "122 121 0:44 / /proc rw,nosuid - proc proc rw"
	oldRootAt  = "123 121 8:2 / /.oldroot rw,relatime - ext4 /dev/sda2 rw"
	sharedRoot = "121 71 8:2 $R / rw,relatime shared:1 - ext4 /dev/sda2 rw"
)

// limitsCgroup is the page's cgroup box with both limits set, and bitten.
func (f *fixture) limitsCgroup() *fixture {
	if f.types["."] == unix.CGROUP2_SUPER_MAGIC {
		f.put("cgroup/box/pids.max", "64\n")
		f.put("cgroup/box/pids.events", "max 4711\n")
		f.put("cgroup/box/cpu.max", "20000 100000\n")
		f.put("cgroup/box/cpu.stat", "usage_usec 801234\nnr_periods 12\nnr_throttled 10\nthrottled_usec 797521\n")
		f.put("cgroup/box/cgroup.procs", "")
		return f
	}
	f.put("cgroup/pids/box/pids.max", "64\n")
	f.put("cgroup/pids/box/pids.events", "max 4711\n")
	f.put("cgroup/pids/box/cgroup.procs", "")
	f.put("cgroup/cpu/box/cpu.cfs_quota_us", "20000\n")
	f.put("cgroup/cpu/box/cpu.cfs_period_us", "100000\n")
	f.put("cgroup/cpu/box/cpu.stat", "nr_periods 12\nnr_throttled 10\nthrottled_time 797521000\n")
	f.put("cgroup/cpu/box/cgroup.procs", "")
	return f
}

// Each case is one state of a machine, for one stage: the report must match
// its golden file, and the exit status must say whether the stage passed.
func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		stage stage
		setup func(f *fixture)
		code  int
	}{
		// 1: BusyBox
		{"1-ok", stage1, nil, 0},
		{"1-missing", stage1, func(f *fixture) { f.rm(f.env.Busybox) }, 1},
		{"1-byhand-not-executable", stage1, func(f *fixture) { f.byHand(); _ = os.Chmod(f.env.Busybox, 0o644) }, 1},
		{"1-byhand-dynamic", stage1, func(f *fixture) { f.byHand(); f.elf(f.env.Busybox, true) }, 1},
		{"1-byhand-html", stage1, func(f *fixture) {
			f.byHand()
			f.put("home/Downloads/busybox", "<!DOCTYPE html>\n<html>404</html>\n")
			_ = os.Chmod(f.env.Busybox, 0o755)
		}, 1},
		{"1-does-not-run", stage1, func(f *fixture) { f.errors[TryHello] = errors.New("fork/exec: exec format error") }, 1},

		// 2: the root filesystem
		{"2-ok", stage2, nil, 0},
		{"2-byhand-ok", stage2, func(f *fixture) { f.byHand() }, 0},
		{"2-missing", stage2, func(f *fixture) { f.rm(f.env.Rootfs) }, 1},
		{"2-byhand-missing", stage2, func(f *fixture) { f.byHand(); f.rm(f.env.Rootfs) }, 1},
		{"2-byhand-partial", stage2, func(f *fixture) {
			f.byHand()
			f.rm("home/container/proc")
			f.rm("home/container/sys")
			f.rm("home/container/bin/busybox")
		}, 1},
		{"2-byhand-file-for-dir", stage2, func(f *fixture) {
			f.byHand()
			f.rm("home/container/sys")
			f.put("home/container/sys", "")
		}, 1},
		{"2-byhand-symlinked-busybox", stage2, func(f *fixture) {
			f.byHand()
			f.rm("home/container/bin/busybox")
			_ = os.Symlink(f.env.Busybox, filepath.Join(f.env.Rootfs, "bin", "busybox"))
		}, 1},

		// 3: chroot
		{"3-ok", stage3, nil, 0},
		{"3-byhand-ok", stage3, func(f *fixture) { f.byHand() }, 0},
		{"3-not-root", stage3, func(f *fixture) { f.env.Euid = 1000 }, 1},
		{"3-byhand-not-executable", stage3, func(f *fixture) {
			f.byHand()
			_ = os.Chmod(filepath.Join(f.env.Rootfs, "bin", "busybox"), 0o644)
		}, 1},
		{"3-byhand-dynamic", stage3, func(f *fixture) { f.byHand(); f.elf(filepath.Join(f.env.Rootfs, "bin", "busybox"), true) }, 1},
		{"3-byhand-no-busybox", stage3, func(f *fixture) { f.byHand(); f.rm("home/container/bin/busybox") }, 1},
		{"3-chroot-fails", stage3, func(f *fixture) {
			f.errors[TryChroot] = errors.New("fork/exec /bin/busybox: no such file or directory")
		}, 1},

		// 4: proc
		{"4-ok", stage4, nil, 0},
		{"4-byhand-mounted", stage4, func(f *fixture) {
			f.byHand()
			f.mounts = append(f.mounts, "40 22 0:5 / $T/home/container/proc rw,relatime shared:3 - proc /proc rw")
		}, 0},
		{"4-byhand-unmounted", stage4, func(f *fixture) { f.byHand() }, 0},
		{"4-byhand-mounted-twice", stage4, func(f *fixture) {
			f.byHand()
			f.mounts = append(f.mounts, "40 22 0:5 / $T/home/container/proc rw shared:3 - proc /proc rw",
				"41 40 0:6 / $T/home/container/proc rw shared:4 - proc /proc rw")
		}, 0},
		{"4-byhand-tmpfs", stage4, func(f *fixture) {
			f.byHand()
			f.mounts = append(f.mounts, "40 22 0:50 / $T/home/container/proc rw shared:3 - tmpfs tmpfs rw")
		}, 1},
		{"4-sees-nothing", stage4, func(f *fixture) { f.tries[TryProc] = "PID   USER     COMMAND\n" }, 1},
		{"4-byhand-no-rootfs", stage4, func(f *fixture) { f.byHand(); f.rm("home/container/bin") }, 1},
		{"4-not-root", stage4, func(f *fixture) { f.env.Euid = 1000 }, 1},

		// 5: PID namespace
		{"5-ok", stage5, nil, 0},
		{"5-no-unshare", stage5, func(f *fixture) {
			f.env.LookPath = func(string) (string, error) { return "", errors.New("not found") }
		}, 0},
		{"5-byhand-no-unshare", stage5, func(f *fixture) {
			f.byHand()
			f.env.LookPath = func(string) (string, error) { return "", errors.New("not found") }
		}, 1},
		{"5-no-pid-namespaces", stage5, func(f *fixture) { f.rm("proc/self/ns/pid") }, 1},
		{"5-not-alone", stage5, func(f *fixture) { f.tries[TryPIDNamespace] = psHost }, 1},
		{"5-unshare-fails", stage5, func(f *fixture) {
			f.errors[TryPIDNamespace] = errors.New("fork/exec: operation not permitted")
		}, 1},

		// 6: memory cgroup
		{"6-v1-probe", stage6, nil, 0},
		{"6-v1-not-root", stage6, func(f *fixture) { f.env.Euid = 1000 }, 1},
		{"6-v1-probe-fails", stage6, func(f *fixture) {
			f.errors[TryCgroup] = errors.New("create cgroup: mkdir $T/cgroup/memory/underhood/check-0a1b2c3d: read-only file system")
		}, 1},
		{"6-v1-byhand-ok", stage6, func(f *fixture) { f.byHand().handCgroup() }, 0},
		{"6-v1-handmade-seen-too", stage6, func(f *fixture) { f.handCgroup() }, 0},
		{"6-v1-byhand-missing", stage6, func(f *fixture) { f.byHand() }, 1},
		{"6-v1-byhand-no-limit", stage6, func(f *fixture) {
			f.byHand().handCgroup()
			f.put("cgroup/memory/busybox/memory.limit_in_bytes", "9223372036854771712\n")
			f.put("cgroup/memory/busybox/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
			f.put("cgroup/memory/busybox/cgroup.procs", "4242\n")
		}, 1},
		{"6-v1-byhand-not-killed", stage6, func(f *fixture) {
			f.byHand().handCgroup()
			f.put("cgroup/memory/busybox/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
		}, 1},
		{"6-v1-byhand-swap", stage6, func(f *fixture) {
			f.byHand().handCgroup()
			f.put("proc/swaps", withSwap)
		}, 0},
		{"6-v1-byhand-swap-no-accounting", stage6, func(f *fixture) {
			f.byHand().handCgroup()
			f.put("proc/swaps", withSwap)
			f.rm("cgroup/memory/busybox/memory.memsw.limit_in_bytes")
			f.put("cgroup/memory/busybox/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")
		}, 0},
		{"6-v2-probe", stage6, func(f *fixture) { f.v2() }, 0},
		{"6-v2-byhand-ok", stage6, func(f *fixture) { f.byHand().v2().handCgroup() }, 0},
		{"6-v2-byhand-missing", stage6, func(f *fixture) { f.byHand().v2() }, 1},
		{"6-v2-byhand-no-memory-max", stage6, func(f *fixture) {
			f.byHand().v2()
			f.put("cgroup/busybox/cgroup.procs", "")
		}, 1},
		{"6-v2-byhand-swap", stage6, func(f *fixture) {
			f.byHand().v2().handCgroup()
			f.put("proc/swaps", withSwap)
		}, 0},
		{"6-no-controller", stage6, func(f *fixture) { f.rm("cgroup"); f.types = map[string]int64{} }, 1},

		// 7: leftovers
		{"7-clean", stage7, nil, 0},
		{"7-byhand-clean", stage7, func(f *fixture) { f.byHand() }, 0},
		{"7-leftovers", stage7, func(f *fixture) {
			f.byHand().handCgroup()
			f.mkdir("lab/runs/box-0a1b2c3d4e")
			f.mkdir("cgroup/memory/underhood/box-0a1b2c3d4e")
			f.mkdir("tmp/container/4242")
			f.mounts = append(f.mounts,
				"39 22 0:4 / $T/lab rw shared:2 - tmpfs tmpfs rw", // the work directory on a tmpfs: fine
				"40 22 0:5 / $T/lab/runs/box-0a1b2c3d4e/rootfs/proc rw shared:3 - proc proc rw",
				"41 22 0:5 / $T/home/container/proc rw shared:4 - proc /proc rw",
				"42 22 0:6 / $T/tmp/container/4242/dev/urandom rw shared:5 - devtmpfs udev rw")
			f.put("proc/4243/comm", "sh\n")
			_ = os.Symlink(f.env.Rootfs, f.path("proc/4243/root"))
			f.put("proc/1/comm", "systemd\n")
			_ = os.Symlink("/", f.path("proc/1/root"))
		}, 1},
		// The article's script names its cgroup busybox-$$.
		{"7-script-cgroup", stage7, func(f *fixture) {
			f.put("cgroup/memory/busybox-550/cgroup.procs", "550\n")
		}, 1},
		// Another work directory's (or user's) cgroups are not this lab's.
		{"7-other-labs-cgroups", stage7, func(f *fixture) {
			for _, n := range []string{"box-1111111111", "box-2222222222", "clitest-x/box-3333333333"} {
				f.put("cgroup/memory/underhood/"+n+"/cgroup.procs", "")
			}
		}, 0},
	}
	cases = append(cases, part2Cases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.setup != nil {
				c.setup(f)
			}
			r := f.report(c.stage.n, c.stage.title, c.stage.run)
			got, code := f.text(r, false)
			golden(t, c.name, got)
			if code != c.code {
				t.Errorf("exit status %d, want %d", code, c.code)
			}
		})
	}
}

// Steps 8–10, done by hand: a shell left open in another terminal, a
// cgroup with the limits.
var part2Cases = []struct {
	name  string
	stage stage
	setup func(f *fixture)
	code  int
}{
	// 8: pivot_root
	{"8-probe", stage8, nil, 0},
	{"8-probe-fails", stage8, func(f *fixture) {
		f.errors[TryPivot] = errors.New("exit status 1: pivot_root: pivot_root: Invalid argument")
	}, 1},
	{"8-not-root", stage8, func(f *fixture) { f.env.Euid = 1000 }, 1},
	{"8-byhand-no-shell", stage8, func(f *fixture) { f.byHand() }, 1},
	{"8-byhand-chroot", stage8, func(f *fixture) { f.byHand().shell(4242, hostNS, fullRoot) }, 1},
	{"8-byhand-chroot-in-namespace", stage8, func(f *fixture) {
		f.byHand().shell(4242, ownNS, fullRoot, sharedRoot, newProc)
	}, 1},
	{"8-byhand-old-root-mounted", stage8, func(f *fixture) {
		f.byHand().shell(4242, ownNS, fullRoot, newRoot, newProc, oldRootAt)
		f.pivot(4242)
	}, 1},
	{"8-byhand-ok", stage8, func(f *fixture) {
		f.byHand().shell(4242, ownNS, fullRoot, newRoot, newProc)
		f.pivot(4242)
		f.shell(4250, hostNS, fullRoot) // a plain chroot beside it: the pivoted one is judged
	}, 0},

	// 9: pids and cpu
	{"9-v1-probe", stage9, nil, 0},
	{"9-v2-probe", stage9, func(f *fixture) { f.v2() }, 0},
	{"9-v1-byhand-missing", stage9, func(f *fixture) { f.byHand() }, 1},
	{"9-v2-byhand-missing", stage9, func(f *fixture) { f.byHand().v2() }, 1},
	{"9-v1-byhand-ok", stage9, func(f *fixture) { f.byHand().limitsCgroup() }, 0},
	{"9-v2-byhand-ok", stage9, func(f *fixture) { f.byHand().v2().limitsCgroup() }, 0},
	{"9-v2-byhand-no-limits", stage9, func(f *fixture) {
		f.byHand().v2().limitsCgroup()
		f.put("cgroup/box/pids.max", "max\n")
		f.put("cgroup/box/cpu.max", "max 100000\n")
	}, 1},
	{"9-v2-byhand-not-bitten", stage9, func(f *fixture) {
		f.byHand().v2().limitsCgroup()
		f.put("cgroup/box/pids.events", "max 0\n")
		f.put("cgroup/box/cpu.stat", "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
		f.put("cgroup/box/cgroup.procs", "4242\n")
	}, 1},
	{"9-v2-byhand-controllers-off", stage9, func(f *fixture) {
		f.byHand().v2()
		f.put("cgroup/box/cgroup.procs", "")
	}, 1},
	{"9-v1-byhand-no-cpu-cgroup", stage9, func(f *fixture) {
		f.byHand().limitsCgroup()
		f.rm("cgroup/cpu/box")
	}, 1},
	// Step 6's cgroup, with the limits added to it, counts too.
	{"9-v2-byhand-step6-cgroup", stage9, func(f *fixture) {
		f.byHand().v2().limitsCgroup()
		f.rm("cgroup/box")
		f.put("cgroup/busybox/pids.max", "32\n")
		f.put("cgroup/busybox/pids.events", "max 3\n")
		f.put("cgroup/busybox/cpu.max", "50000 100000\n")
		f.put("cgroup/busybox/cpu.stat", "nr_throttled 4\n")
		f.put("cgroup/busybox/cgroup.procs", "")
	}, 0},

	// Without --rootfs, step 6's leftover cgroup is not taken for step 9's.
	{"9-v2-step6-leftover", stage9, func(f *fixture) { f.v2().handCgroup() }, 0},

	// 10: privileges
	{"10-shown", stageX, func(f *fixture) {
		f.put("lab/progress.json", `{"privileges": "2026-12-06T19:00:00Z"}`)
	}, 0},
	{"10-not-run", stageX, nil, 1},
	{"10-byhand-no-shell", stageX, func(f *fixture) { f.byHand() }, 1},
	{"10-byhand-full-root", stageX, func(f *fixture) { f.byHand().shell(4242, hostNS, fullRoot) }, 1},
	{"10-byhand-ok", stageX, func(f *fixture) {
		f.byHand().shell(4242, hostNS, byCapsh)
		f.shell(4250, hostNS, fullRoot) // a root shell beside it: the one with fewer privileges is judged
	}, 0},
}

// The JSON form carries the same rows, with stable field names.
func TestJSON(t *testing.T) {
	f := newFixture(t).byHand()
	f.rm("home/container/sys")
	r := f.report(stage2.n, stage2.title, stage2.run)
	got, code := f.text(r, true)
	golden(t, "2-byhand-partial-json", got)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// A failing check must say what to do: every FAIL row has a hint.
func TestEveryFailHasAHint(t *testing.T) {
	f := newFixture(t).byHand()
	f.rm("home/container")
	f.rm("home/Downloads/busybox")
	f.env.Euid = 1000
	f.env.LookPath = func(string) (string, error) { return "", errors.New("not found") }
	for _, s := range []stage{stage1, stage2, stage3, stage4, stage5, stage6, stage7, stage8, stage9, stageX} {
		for _, it := range f.report(s.n, s.title, s.run).Items {
			if it.Status == ui.Fail && it.Hint == "" {
				t.Errorf("step %d, %s: FAIL without a hint (%s)", s.n, it.Check, it.Detail)
			}
		}
	}
}

// The real probes, where this machine allows: root, and /bin/busybox.
func TestRunReal(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("requires root: chroot and namespaces (CI runs as root)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("requires /bin/busybox (apt-get install busybox-static)")
	}
	root := t.TempDir()
	f := &fixture{t: t}
	f.tree(root)
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile("/proc/self/mountinfo")
	if out, err := Run(Probe{Kind: TryChroot, Path: root}); err != nil || !strings.Contains(out, "proc") {
		t.Errorf("chroot: %q, %v", out, err)
	}
	if out, err := Run(Probe{Kind: TryProc, Path: root}); err != nil {
		t.Errorf("proc: %v", err)
	} else if n, _ := processes(out); n < 2 {
		t.Errorf("proc: ps lists %d processes:\n%s", n, out)
	}
	if out, err := Run(Probe{Kind: TryPIDNamespace, Path: root}); err != nil {
		t.Errorf("pid namespace: %v", err)
	} else if n, first := processes(out); n != 1 || first != "1" {
		t.Errorf("pid namespace: %d processes, first %s:\n%s", n, first, out)
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if !bytes.Equal(before, after) || strings.Contains(string(after), root) {
		t.Errorf("the probes changed the host's mount table")
	}
}

// Steps 8–10 done by hand for real, with the page's commands, in a shell
// left running: each check judges what the kernel shows of it; then the
// probes of underhood's way. Nothing is left: no process, no mount, no
// cgroup.
func TestPart2Real(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("requires root: namespaces, pivot_root, capabilities (CI runs as root)")
	}
	for _, tool := range []string{"/bin/busybox", "/usr/bin/unshare", "/usr/sbin/capsh"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("requires %s", tool)
		}
	}
	root := t.TempDir()
	f := &fixture{t: t}
	f.tree(root)
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile("/proc/self/mountinfo")
	env := System(state.Workdir{Root: t.TempDir()})
	env.Rootfs, env.ByHand, env.RootfsGiven = root, true, true

	// judge starts script in root, waits until a process is in it, and
	// checks step fn, then ends the script's processes.
	judge := func(name string, fn func(Env) []Item, argv ...string) map[string]ui.Level {
		t.Helper()
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = root
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var stderr bytes.Buffer
		c.Stderr = &stderr
		defer func() {
			if stderr.Len() > 0 {
				t.Logf("%s said: %s", name, stderr.String())
			}
		}()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}()
		got := map[string]ui.Level{}
		for i := 0; i < 100; i++ {
			got = map[string]ui.Level{}
			for _, it := range fn(env) {
				got[it.Check] = it.Status
			}
			if got[rowShell] == ui.OK {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: %v", name, got)
		return got
	}
	const sleep = "exec /bin/busybox sleep 30"
	pivot := "mount --make-rprivate / && mount --rbind . . && cd \"$PWD\" && mkdir -p .oldroot && pivot_root . .oldroot && /bin/busybox umount -l /.oldroot && /bin/busybox rmdir /.oldroot && " + sleep
	got := judge("pivot_root", PivotRoot, "unshare", "-m", "-p", "-f", "--mount-proc="+root+"/proc", "sh", "-c", pivot)
	if got[rowPivot] != ui.OK || got[rowOldRoot] != ui.OK {
		t.Errorf("the page's pivot_root: %v", got)
	}
	got = judge("old root kept", PivotRoot, "unshare", "-m", "sh", "-c", "mount --make-rprivate / && mount --rbind . . && cd \"$PWD\" && mkdir -p .oldroot && pivot_root . .oldroot && "+sleep)
	if got[rowPivot] != ui.OK || got[rowOldRoot] != ui.Fail {
		t.Errorf("pivot_root with the old root kept: %v", got)
	}
	got = judge("chroot in a namespace", PivotRoot, "unshare", "-m", "chroot", ".", "/bin/busybox", "sleep", "30")
	if got[rowMntNS] != ui.OK || got[rowPivot] != ui.Fail {
		t.Errorf("chroot in a mount namespace: %v", got)
	}
	got = judge("plain chroot", PivotRoot, "chroot", ".", "/bin/busybox", "sleep", "30")
	if got[rowMntNS] != ui.Fail {
		t.Errorf("plain chroot: %v", got)
	}
	got = judge("capsh", Privileges, "sh", "-c", strings.Replace(fmt.Sprintf(privsByHand, root), "sudo ", "", 1)+" -c 'exec /bin/busybox sleep 30'")
	if got[rowCapEff] != ui.OK || got[rowCapBnd] != ui.OK || got[rowNNP] != ui.OK {
		t.Errorf("the page's capsh: %v", got)
	}
	got = judge("root", Privileges, "chroot", ".", "/bin/busybox", "sleep", "30")
	if got[rowCapEff] != ui.Fail || got[rowNNP] != ui.Fail {
		t.Errorf("plain root: %v", got)
	}
	_ = os.Remove(filepath.Join(root, ".oldroot"))

	if out, err := Run(Probe{Kind: TryPivot, Path: root}); err != nil || strings.Join(strings.Fields(out), " ") != "bin dev etc proc sys" {
		t.Errorf("pivot probe: %q, %v", out, err)
	}
	h, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := Run(Probe{Kind: TryLimits, Host: h}); err != nil {
		t.Errorf("limits probe: %v", err)
	} else if m := regexp.MustCompile(`made (\S+) `).FindStringSubmatch(out); m == nil {
		t.Errorf("limits probe: %q", out)
	} else if _, err := os.Stat(m[1]); err == nil {
		t.Errorf("limits probe left %s", m[1])
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if !bytes.Equal(before, after) || strings.Contains(string(after), root) {
		t.Errorf("the checks changed the host's mount table")
	}
}
