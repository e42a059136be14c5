package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// New returns the driver for the cgroup MemoryRoot/parent/name; nothing is
// touched until Create. name is one path component; parent is DefaultParent
// or a relative path below it ("underhood/tests"), so that every lab cgroup
// lives under DefaultParent and Open accepts what New makes.
func New(h Host, parent, name string) (Manager, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("cgroup name %q: %w", name, err)
	}
	comps, err := parentComponents(parent)
	if err != nil {
		return nil, fmt.Errorf("cgroup parent %q: %w", parent, err)
	}
	if err := hasMemory(h); err != nil {
		return nil, fmt.Errorf("new cgroup %s: %w", name, err)
	}
	return newDriver(h, comps, name, realOps), nil
}

// Open returns the driver for an existing lab cgroup directory, as recorded
// in a run's journal. It refuses any path that is not strictly below
// MemoryRoot/DefaultParent, or that passes through a symbolic link, so that
// cleanup driven by files on disk can never reach another cgroup.
func Open(h Host, path string) (Manager, error) {
	if err := hasMemory(h); err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", path, err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("open cgroup %q: %s; underhood only touches cgroups below %s/",
			path, why, filepath.Join(h.MemoryRoot, DefaultParent))
	}
	if !filepath.IsAbs(path) {
		return nil, refuse("not an absolute path")
	}
	for _, c := range strings.Split(path, "/") {
		if c == ".." {
			return nil, refuse(`".." in the path`)
		}
	}
	rel, err := filepath.Rel(h.MemoryRoot, filepath.Clean(path))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil, refuse("not in the memory hierarchy " + h.MemoryRoot)
	}
	comps := strings.Split(rel, "/")
	if comps[0] != DefaultParent {
		return nil, refuse("not a lab cgroup")
	}
	if len(comps) < 2 {
		return nil, refuse("the lab's parent cgroup itself")
	}
	for _, c := range comps {
		if err := checkName(c); err != nil {
			return nil, refuse(err.Error())
		}
	}
	cur := h.MemoryRoot
	for _, c := range comps {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			break // already gone: Remove will say so by succeeding
		}
		if err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, refuse(cur + " is a symbolic link")
		}
		if !fi.IsDir() {
			return nil, refuse(cur + " is not a directory")
		}
	}
	return newDriver(h, comps[:len(comps)-1], comps[len(comps)-1], realOps), nil
}

// RemoveParent removes the parent cgroup MemoryRoot/parent (deepest
// component first) while it holds no cgroups and no processes. It is for a
// caller that made the parent and wants to leave the host as it found it,
// such as doctor's probe; Remove never touches the parent. A parent still
// in use (the kernel says EBUSY) or already gone is left without an error;
// removed reports whether anything went.
func RemoveParent(h Host, parent string) (removed bool, err error) {
	comps, err := parentComponents(parent)
	if err != nil {
		return false, fmt.Errorf("cgroup parent %q: %w", parent, err)
	}
	if err := hasMemory(h); err != nil {
		return false, fmt.Errorf("remove parent cgroup %s: %w", parent, err)
	}
	for i := len(comps); i > 0; i-- {
		dir := filepath.Join(append([]string{h.MemoryRoot}, comps[:i]...)...)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("remove parent cgroup: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				return removed, nil // still holds cgroups: in use
			}
		}
		err = realOps.rmdir(dir)
		if errors.Is(err, syscall.EBUSY) {
			return removed, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove parent cgroup: %w", err)
		}
		removed = removed || err == nil
	}
	return removed, nil
}

func hasMemory(h Host) error {
	if h.MemoryVersion == 0 || h.MemoryRoot == "" {
		return fmt.Errorf("no memory controller under %s (layout %s)", h.Root, h.Layout)
	}
	return nil
}

// CheckName checks c as the name of one cgroup directory: one path
// component, and not a name the kernel uses for its control files.
func CheckName(c string) error { return checkName(c) }

func checkName(c string) error {
	switch {
	case c == "":
		return errors.New("empty")
	case c == "." || c == "..":
		return fmt.Errorf("%q is not a name", c)
	case strings.ContainsAny(c, "/\x00"):
		return errors.New(`contains "/" or NUL: give a single name`)
	case len(c) > 255:
		return errors.New("longer than 255 bytes")
	case controlFile(c):
		return fmt.Errorf("%q is a name the kernel uses for cgroup control files (cgroup.*, memory.*, pids.*, cpu.*, tasks, …): give another", c)
	}
	return nil
}

// controllers prefix the kernel's control files: memory.max, pids.max, ….
var controllers = []string{"cgroup", "memory", "pids", "cpu", "cpuacct", "cpuset", "io", "blkio",
	"devices", "freezer", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}

// controlFile reports whether c is, or could be, the name of a control file
// in a cgroup directory: a cgroup cannot be made there, or could never be
// removed (a run's journal would name a file, not a cgroup).
func controlFile(c string) bool {
	switch c {
	case "tasks", "notify_on_release", "release_agent":
		return true
	}
	if i := strings.IndexByte(c, '.'); i > 0 {
		for _, k := range controllers {
			if c[:i] == k {
				return true
			}
		}
	}
	return false
}

func parentComponents(parent string) ([]string, error) {
	comps := strings.Split(parent, "/")
	for _, c := range comps {
		if err := checkName(c); err != nil {
			return nil, fmt.Errorf("component %q: %w", c, err)
		}
	}
	if comps[0] != DefaultParent {
		return nil, fmt.Errorf("lab cgroups live under %q: give %q or a path below it", DefaultParent, DefaultParent)
	}
	return comps, nil
}

// sysOps are the kernel operations a driver performs beyond reading and
// writing control files. Tests replace them with a fake kernel that
// populates control files on mkdir, as cgroupfs does.
type sysOps struct {
	write func(path, value string) error
	mkdir func(path string, perm os.FileMode) error
	rmdir func(path string) error
	kill  func(pid int, sig syscall.Signal) error
	sleep func(time.Duration)
	now   func() time.Time
}

var realOps = sysOps{
	write: writeFile,
	mkdir: os.Mkdir,
	rmdir: func(path string) error {
		if err := unix.Rmdir(path); err != nil {
			return &fs.PathError{Op: "rmdir", Path: path, Err: err}
		}
		return nil
	},
	kill:  syscall.Kill,
	sleep: time.Sleep,
	now:   time.Now,
}

const (
	killTimeout   = 5 * time.Second // for the kernel to end every process
	removeTimeout = 2 * time.Second // for rmdir to stop saying EBUSY
)

func newDriver(h Host, parent []string, name string, ops sysOps) Manager {
	b := &base{
		host:   h,
		parent: parent,
		dir:    filepath.Join(append(append([]string{h.MemoryRoot}, parent...), name)...),
		ops:    ops,
	}
	if h.MemoryVersion == 2 {
		return &v2{b}
	}
	return &v1{b}
}

// base is what both drivers share: the paths and the file and process
// plumbing.
type base struct {
	host   Host
	parent []string // components below MemoryRoot
	dir    string
	ops    sysOps
}

func (b *base) Path() string            { return b.dir }
func (b *base) file(name string) string { return filepath.Join(b.dir, name) }
func (b *base) exists(name string) bool { _, err := os.Stat(b.file(name)); return err == nil }
func (b *base) parentDirs() []string {
	dirs := make([]string, 0, len(b.parent))
	cur := b.host.MemoryRoot
	for _, c := range b.parent {
		cur = filepath.Join(cur, c)
		dirs = append(dirs, cur)
	}
	return dirs
}

// makeDirs makes the missing parents and then the cgroup itself, which must
// not exist yet. between runs after each parent is made or found (v2 enables
// controllers there).
func (b *base) makeDirs(between func(dir string) error) error {
	if fi, err := os.Stat(b.host.MemoryRoot); err != nil || !fi.IsDir() {
		if err == nil {
			err = &fs.PathError{Op: "stat", Path: b.host.MemoryRoot, Err: unix.ENOTDIR}
		}
		return fmt.Errorf("create cgroup: memory hierarchy: %w", err)
	}
	for _, d := range b.parentDirs() {
		if err := b.ops.mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create parent cgroup: %w", err)
		}
		if between != nil {
			if err := between(d); err != nil {
				return err
			}
		}
	}
	if err := b.ops.mkdir(b.dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup: %w (left by an earlier run? try 'sudo underhood cleanup --all', or 'sudo rmdir %s' once it is empty)", err, b.dir)
		}
		return fmt.Errorf("create cgroup: %w", err)
	}
	return nil
}

// undoCreate removes the cgroup just made when setting it up failed, so a
// failed Create leaves nothing behind.
func (b *base) undoCreate(err error) error {
	if rerr := b.ops.rmdir(b.dir); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return errors.Join(err, fmt.Errorf("undo create: %w", rerr))
	}
	return err
}

func (b *base) checkLimit(limit int64) error {
	if limit == NoLimit {
		return nil
	}
	if limit <= 0 {
		return fmt.Errorf("create cgroup %s: memory limit %d: must be a positive number of bytes", b.dir, limit)
	}
	return nil
}

// join writes pid into file (cgroup.procs): the kernel moves the process.
func (b *base) join(file string, pid int) error {
	if pid <= 0 {
		// 0 would move the writer itself: refuse rather than surprise.
		return fmt.Errorf("join cgroup %s: pid %d: not a process ID", b.dir, pid)
	}
	if err := b.ops.write(file, strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("join cgroup: pid %d: %w", pid, err)
	}
	return nil
}

func (b *base) Procs() ([]int, error) {
	pids, err := readPids(b.file("cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return pids, nil
}

// killEach sends SIGKILL to every listed process until the list is empty.
// The pids come from our own cgroup's cgroup.procs, so they are ours to end.
func (b *base) killEach() error {
	deadline := b.ops.now().Add(killTimeout)
	delay := 5 * time.Millisecond
	for {
		pids, err := readPids(b.file("cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill processes: %w", err)
		}
		if len(pids) == 0 {
			return nil
		}
		if b.ops.now().After(deadline) {
			return fmt.Errorf("kill processes in %s: still there after %s: %v", b.dir, killTimeout, pids)
		}
		for _, pid := range pids {
			if err := b.ops.kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill processes in %s: kill %d: %w", b.dir, pid, err)
			}
		}
		b.ops.sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// waitEmpty polls empty until it reports true, up to killTimeout.
func (b *base) waitEmpty(empty func() (bool, error)) error {
	deadline := b.ops.now().Add(killTimeout)
	delay := 5 * time.Millisecond
	for {
		ok, err := empty()
		if err != nil {
			return fmt.Errorf("kill processes: %w", err)
		}
		if ok {
			return nil
		}
		if b.ops.now().After(deadline) {
			pids, _ := readPids(b.file("cgroup.procs"))
			return fmt.Errorf("kill processes in %s: still there after %s: %v", b.dir, killTimeout, pids)
		}
		b.ops.sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// remove kills what is left, then rmdirs the cgroup, backing off while the
// kernel still says EBUSY (exiting processes take a moment to leave). The
// parent is left in place: other runs may be using it.
func (b *base) remove(kill func() error) error {
	if _, err := os.Stat(b.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := kill(); err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	return b.rmdir(b.dir)
}

// rmdir removes an empty cgroup directory, backing off while the kernel
// still says EBUSY: the processes just killed take a moment to leave, and
// on v1 they leave each hierarchy (memory, pids, cpu) in its own time.
func (b *base) rmdir(dir string) error {
	deadline := b.ops.now().Add(removeTimeout)
	delay := 10 * time.Millisecond
	for {
		err := b.ops.rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || b.ops.now().After(deadline) {
			return fmt.Errorf("remove cgroup: %w", err)
		}
		b.ops.sleep(delay)
		delay *= 2
	}
}

func (b *base) files(list []fileMeaning) []File {
	var out []File
	for _, f := range list {
		v, err := os.ReadFile(b.file(f.name))
		if err != nil {
			continue
		}
		out = append(out, File{Name: f.name, Value: strings.TrimSpace(string(v)), Meaning: f.meaning})
	}
	return out
}

type fileMeaning struct{ name, meaning string }

// Meaning is a one-line explanation of a cgroup control file for
// newcomers (version 1 or 2), or "" for a file underhood does not explain.
// The inspector shows it next to any cgroup's files.
func Meaning(version int, file string) string {
	list := v1Files
	if version == 2 {
		list = v2Files
	}
	for _, f := range list {
		if f.name == file {
			return f.meaning
		}
	}
	return ""
}

// writeFile writes one value to an existing control file in a single
// write(2), as cgroupfs expects. It never creates the file: a missing
// control file means the kernel lacks the feature. Errors are *fs.PathError
// ("write /sys/fs/cgroup/…/memory.max: invalid argument").
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(value))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	if cerr != nil {
		return cerr
	}
	return nil
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(l)
		if err != nil || pid <= 0 {
			// Never pass 0 or a negative number to kill(2): they mean groups.
			return nil, fmt.Errorf("read %s: %q is not a process ID", path, l)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readKeyed reads a flat-keyed file ("oom_kill 3" per line) and returns the
// value of key, and whether the key was there.
func readKeyed(path, key string) (int64, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("read %s: %s: %q is not a number", path, key, v)
		}
		return n, true, nil
	}
	return 0, false, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", path, strings.TrimSpace(string(b)))
	}
	return n, nil
}
