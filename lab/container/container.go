// Package container runs one lab container from a Spec: it records every
// resource in the run's journal before creating it, starts the payload in
// its namespaces and cgroup, forwards signals, reports how it ended, and
// undoes everything afterwards. Cleanup replays journals left by runs that
// were cut short. It knows nothing of the workshop's step numbers.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/image"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/overlay"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/state"
)

// Spec is one container run.
type Spec struct {
	Name string // the run's name; "" picks a random one with NamePrefix
	Kind string // what ps shows: chroot, mount-proc, unshare, cgroup, run

	// Rootfs is an existing root to use as is (shared, read by many runs);
	// when empty, the run gets its own root under its directory, made from
	// Busybox.
	Rootfs  string
	Busybox string

	Clone    uintptr
	Flags    ns.Flags
	Hostname string

	// Users, when not 0, gives the container a user namespace of its own
	// whose uid and gid 0 are this host ID (65534, nobody): root inside,
	// nobody outside. The top directory of its own root (Rootfs empty) is
	// given to that ID, so that root inside owns it.
	Users int
	// Group is the host group of gid 0 inside; 0 means Users.
	Group int

	// Net connects a container with its own network namespace
	// (CLONE_NEWNET in Clone) by a veth pair, before the payload runs.
	Net *Network

	// Memory is the cgroup memory limit in bytes; 0 means no cgroup.
	// Limits are the cgroup's task and CPU limits; Pids 0 is
	// cgroup.DefaultPids, where the host has a pids controller.
	Memory int64
	Limits cgroup.Limits
	// Track puts a run without a memory limit in a cgroup too, only to
	// hold its processes: then every one of them (a job that left its
	// session included) is found and ended, even after a kill -9 of
	// underhood. Best effort: without a usable cgroup the run goes on.
	Track        bool
	Cgroups      cgroup.Host
	CgroupParent string // "" means cgroup.DefaultParent
	// Settle is for a user's run below the delegated cgroup v2 that holds
	// underhood itself (cgroup.Delegation): underhood moves into a leaf of
	// its own first, and back afterwards (cgroup.Settle).
	Settle bool

	Argv []string
	Env  []string

	// CopyIn are host files copied into the run's own root (with Rootfs
	// empty) before it starts, e.g. underhood itself for its escape.
	CopyIn []CopyIn

	// Overlay gives the run a root of its own as an overlay: Rootfs is the
	// read-only lower layer (never written, shared by every run), with an
	// upper and a work directory in the run directory, mounted on
	// runs/<name>/rootfs before the payload's namespaces are made. Where
	// overlayfs refuses, the run copies instead (from Busybox) and
	// Result.OverlayFallback says why.
	Overlay bool
	// Image, when set, is an OCI image layout directory unpacked (tag
	// ImageTag, "" for its only image) as the run's own root.
	Image, ImageTag string

	Keep bool // keep the run directory afterwards

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Terminal       bool            // give the terminal's foreground to the payload (an interactive shell)
	SameGroup      bool            // keep the payload in underhood's process group (a command on the terminal)
	Context        context.Context // cancelled when a signal came before Run began
	Grace          time.Duration   // after a forwarded signal, before SIGKILL
	Self           string          // executable to re-exec ("" = /proc/self/exe)

	// Started is called once the payload's process exists, before it runs,
	// with its PID as the host sees it.
	Started func(r *Result)
	// Released is called once the payload runs, before underhood waits
	// for it (its /proc/PID is there until then, even if it has exited).
	Released func(r *Result)
	// Exited is called once the payload has ended, before anything of the
	// run is removed: what it left in its root is still there to look at.
	Exited func(r *Result)
}

// Network is a veth pair from Host (nil: underhood's own network
// namespace, the host's) to the container's namespace.
type Network struct {
	Host *os.File
	Veth netns.Veth
}

// Result is how a run went.
type Result struct {
	Name        string
	Dir         string
	HostPID     int
	Cgroup      string // the cgroup directory, "" without one
	SwapLimited bool
	ExitCode    int            // the payload's status, 128+N for a signal
	Signal      syscall.Signal // the signal that ended the payload, if any
	OOMKills    int64          // the kernel's oom_kill counter after the run
	OOMKilled   bool           // the counter went up during the run
	Interrupted os.Signal      // SIGINT/SIGTERM/SIGHUP that underhood received
	GraceKilled bool           // underhood sent SIGKILL after the grace period
	Released    bool           // the payload was started
	SetupFailed int            // the exit status of a start that failed (126, 127, 1)
	Kept        bool

	limit  int64
	limits cgroup.Limits
	// PidsLimit is the task limit the cgroup got (0: none, no pids controller).
	PidsLimit int64
	// Counters are the kernel's pids and cpu counters after the run.
	Counters cgroup.Counters

	// Overlay is the run's overlay (nil without one); Changes is what its
	// upper directory held when the payload had ended, read before the
	// cleanup removes it. OverlayFallback is why a run asked for an
	// overlay got a copy instead.
	Overlay         *overlay.Layer
	Changes         []overlay.Change
	OverlayFallback error
}

// Status is underhood's own exit status for this run.
func (r *Result) Status() int {
	if r.Interrupted != nil {
		return 128 + int(r.Interrupted.(syscall.Signal))
	}
	return r.ExitCode
}

// RandomName returns prefix-XXXXXXXX with 40 random bits.
func RandomName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// DefaultGrace is how long a forwarded SIGINT/SIGTERM has before SIGKILL.
const DefaultGrace = 2 * time.Second

// Run runs the container described by s and removes what it created,
// whatever happens. The error is about underhood's own work; the payload's
// fate is in the Result.
func Run(w state.Workdir, s Spec) (res *Result, err error) {
	r := newRun(w, s)
	// The signal handler stays until the cleanup is done (deferred first,
	// so run last), so that a signal cannot cut the cleanup short either.
	defer signal.Stop(r.sigs)
	if err := r.prepare(); err != nil || r.interrupted() {
		return r.res, err
	}
	// Once the run's directory exists, whatever happens next, even in the
	// rest of create (a user namespace refused, an overlay not mounted),
	// finish undoes it.
	cerr := r.create()
	if r.j != nil {
		defer func() {
			if ferr := r.finish(); ferr != nil && err == nil {
				err = ferr
			}
		}()
	}
	if cerr != nil {
		return r.res, cerr
	}
	if r.s.Terminal || r.s.SameGroup {
		signal.Ignore(syscall.SIGTTOU, syscall.SIGTTIN)
		defer restoreTerminal(saveTerminal())
	}
	// Pdeathsig follows the thread that started the child: keep this
	// goroutine on one thread until the payload is gone. As a subreaper,
	// underhood inherits what the payload leaves running, to end it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	if err := r.start(); err != nil {
		return r.res, err
	}
	if err := r.setUp(); err != nil || r.interrupted() {
		r.child.Abort()
		return r.res, err
	}
	if err := r.release(); err != nil || !r.res.Released {
		return r.res, err
	}
	r.wait()
	return r.res, nil
}

// run is one Run under way: what it has made so far.
type run struct {
	w        state.Workdir
	s        Spec
	res      *Result
	sigs     chan os.Signal
	cg       cgroup.Manager
	j        *state.Journal
	root     string // the payload's root directory
	cmd      *exec.Cmd
	child    *ns.Child
	needJoin bool // the child is to be moved into its cgroup after start
	settled  *cgroup.Settled
}

// newRun fills in the defaults and takes the signals: from the first line,
// one that comes before the payload runs stops the start, one that comes
// later is forwarded.
func newRun(w state.Workdir, s Spec) *run {
	if s.Name == "" {
		s.Name = RandomName(s.Kind)
	}
	if s.CgroupParent == "" {
		s.CgroupParent = cgroup.DefaultParent
	}
	if s.Grace == 0 {
		s.Grace = DefaultGrace
	}
	r := &run{w: w, s: s, sigs: make(chan os.Signal, 4),
		res: &Result{Name: s.Name, limit: s.Memory, limits: s.Limits}}
	signal.Notify(r.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return r
}

// interrupted reports whether a signal came (or the context was cancelled
// before Run began), noting the first one.
func (r *run) interrupted() bool {
	if r.res.Interrupted != nil {
		return true
	}
	select {
	case sg := <-r.sigs:
		r.res.Interrupted = sg
	default:
		if r.s.Context != nil && r.s.Context.Err() != nil {
			// Caught before Run began: the context's cause says which.
			r.res.Interrupted = syscall.SIGINT
			var sg interface{ Signal() os.Signal }
			if errors.As(context.Cause(r.s.Context), &sg) {
				r.res.Interrupted = sg.Signal()
			}
		}
	}
	return r.res.Interrupted != nil
}

// prepare validates the cgroup before anything exists on disk.
func (r *run) prepare() error {
	var err error
	switch {
	case r.s.Memory > 0:
		r.cg, err = cgroup.New(r.s.Cgroups, r.s.CgroupParent, r.s.Name)
	case r.s.Track:
		if c, err := cgroup.New(r.s.Cgroups, r.s.CgroupParent, r.s.Name); err == nil {
			r.cg, r.res.limit = c, cgroup.NoLimit
		}
	}
	r.needJoin = r.cg != nil
	r.root = r.s.Rootfs
	return err
}

// create makes the run's directory with its journal, locked, and records
// what the run is and who runs it.
func (r *run) create() error {
	if err := r.w.Ensure(); err != nil {
		return err
	}
	j, err := r.w.CreateRun(r.s.Name)
	if err != nil {
		return err
	}
	r.j, r.res.Dir = j, j.Dir
	if r.ownRoot() {
		r.root = filepath.Join(j.Dir, "rootfs")
	}
	if err := j.Record(state.Entry{Op: "run", Name: r.s.Name, Kind: r.s.Kind, Memory: r.s.Memory,
		Parent: r.s.CgroupParent, Base: r.s.Cgroups.Base, Created: time.Now().UTC()}); err != nil {
		return err
	}
	if st, err := proc.Host.StartTime(os.Getpid()); err == nil {
		_ = j.Record(state.Entry{Op: "owner", PID: os.Getpid(), Start: st})
	}
	if err := r.userNamespace(); err != nil {
		return err
	}
	if r.s.Overlay {
		// Before the clone: the payload's new mount namespace starts as a
		// copy of this one, overlay included, whatever the propagation.
		return mountOverlay(j, r.s.Rootfs, r.root, r.res)
	}
	return nil
}

// userNamespace: with Users, the clone makes a user namespace too, and
// the run's own root must be reachable by that host ID.
func (r *run) userNamespace() error {
	if r.s.Users == 0 {
		return nil
	}
	if !r.ownRoot() {
		return errors.New("a user namespace needs a root of the run's own (Rootfs empty, an image or an overlay)")
	}
	if err := reachable(r.root, r.s.Users); err != nil {
		return err
	}
	if r.s.Group == 0 {
		r.s.Group = r.s.Users
	}
	r.s.Clone |= unix.CLONE_NEWUSER
	return nil
}

// ownRoot: the run has a root of its own in its directory (made from
// BusyBox, an image, or an overlay on the shared Rootfs).
func (r *run) ownRoot() bool { return r.s.Rootfs == "" || r.s.Overlay || r.s.Image != "" }

// finish ends what the payload left, undoes the run and only then
// releases its lock: only now may a cleanup look at it. underhood goes
// back to its own cgroup before the run's directory, journal and all, is
// removed: should that fail, a cleanup still finds the leaf.
func (r *run) finish() error {
	reapOrphans()
	var back func() error
	if r.settled != nil {
		back = r.settled.Return
	}
	err := undo(r.w, r.s.Cgroups, r.j, r.s.Keep, back)
	r.j.Close()
	r.res.Kept = r.s.Keep
	return err
}

func (r *run) newCmd() *exec.Cmd {
	s := r.s
	cmd := ns.Command(ns.Config{Self: s.Self, Clone: s.Clone, Flags: s.Flags, Root: r.root,
		Hostname: s.Hostname, Argv: s.Argv, Env: s.Env, Terminal: s.Terminal, SameGroup: s.SameGroup,
		Users: s.Users, Group: s.Group})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
	return cmd
}

// start starts the child, which waits, blocked, until release: its
// start-up overlaps with making its root and its cgroup. On cgroup v2 the
// child is born in its cgroup (clone3 with CLONE_INTO_CGROUP), which costs
// nothing; on v1, or where that is not to be had, setUp moves it there.
func (r *run) start() error {
	if r.cg != nil && r.cg.Version() == 2 {
		if err := r.settle(); err != nil {
			return err
		}
		if err := r.createCgroup(); err != nil {
			return err
		}
	}
	r.cmd = r.newCmd()
	var dir *os.File
	if r.cg != nil && r.cg.Version() == 2 {
		if d, err := os.Open(r.cg.Path()); err == nil {
			dir = d
			r.cmd.SysProcAttr.UseCgroupFD = true
			r.cmd.SysProcAttr.CgroupFD = int(dir.Fd())
			r.needJoin = false
		}
	}
	child, err := ns.Start(r.cmd)
	if err != nil && r.cmd.SysProcAttr.UseCgroupFD {
		// A kernel before 5.7 has no CLONE_INTO_CGROUP: join after start.
		r.cmd = r.newCmd()
		child, err = ns.Start(r.cmd)
		r.needJoin = true
	}
	if dir != nil {
		dir.Close()
	}
	if err != nil {
		return err
	}
	r.child = child
	pid := r.cmd.Process.Pid
	r.res.HostPID = pid
	st, _ := proc.Host.StartTime(pid)
	pgid := pid
	if r.s.SameGroup {
		pgid = unix.Getpgrp()
	}
	if err := r.j.Record(state.Entry{Op: "pid", PID: pid, Start: st, PGID: pgid}); err != nil {
		child.Abort()
		return err
	}
	return nil
}

// setUp makes the run's own root and its cgroup while the child starts,
// and moves the child into the cgroup. Once the root is made, the child
// makes its mounts and enters its root while the parent connects its
// network and joins it to its cgroup (on v1 that waits for the kernel).
func (r *run) setUp() error {
	if r.ownRoot() {
		if err := r.j.Record(state.Entry{Op: "dir", Path: r.root}); err != nil {
			return err
		}
		if err := makeRoot(r.root, r.s, r.res.Overlay != nil); err != nil {
			return err
		}
		if r.s.Users != 0 {
			// Root inside owns its /: the user the map names.
			if err := os.Lchown(r.root, r.s.Users, r.s.Group); err != nil {
				return fmt.Errorf("give %s to uid %d: %w", r.root, r.s.Users, err)
			}
		}
	}
	r.child.SetUp()
	if err := r.connect(); err != nil {
		return r.why(err)
	}
	if r.cg != nil && r.res.Cgroup == "" {
		if err := r.createCgroup(); err != nil {
			return err
		}
	}
	if r.needJoin {
		if err := r.cg.Join(r.cmd.Process.Pid); err != nil && !r.s.Track {
			return r.why(err)
		}
	}
	return nil
}

// why: when the child failed in its set-up (its join or its network then
// fails too), its own error is the one to report.
func (r *run) why(err error) error {
	err = r.child.Why(err)
	var se *ns.SetupError
	if errors.As(err, &se) {
		r.res.SetupFailed = se.Code
	}
	return err
}

// settle moves underhood out of the delegated cgroup that holds it (Spec
// Settle), into the leaf the journal names first.
func (r *run) settle() error {
	if !r.s.Settle {
		return nil
	}
	if err := r.j.Record(state.Entry{Op: "leaf", Path: cgroup.LeafOf(r.cg.Path())}); err != nil {
		return err
	}
	s, err := cgroup.Settle(r.s.Cgroups, r.s.CgroupParent, r.s.Name, cgroup.Self())
	if err != nil {
		return err
	}
	r.settled = s
	return nil
}

// createCgroup makes the run's cgroup; one that only tracks the run goes
// without when it cannot be made.
func (r *run) createCgroup() error {
	err := createCgroup(r.j, r.cg, r.res)
	if err != nil && r.s.Track {
		r.cg, r.needJoin, err = nil, false, nil
	}
	return err
}

// release lets the payload run. A start that failed says why: its exit
// status (126, 127) or that it died before it ran.
// connect joins the container's network namespace to Net's by a veth
// pair. The host end is recorded first: a cleanup after kill -9 removes
// one that outlived the run (the pair goes by itself with the container's
// namespace).
func (r *run) connect() error {
	if r.s.Net == nil {
		return nil
	}
	if err := r.j.Record(state.Entry{Op: "veth", Name: r.s.Net.Veth.Host}); err != nil {
		return err
	}
	if err := netns.Connect(r.s.Net.Host, r.cmd.Process.Pid, r.s.Net.Veth); err != nil {
		_ = netns.Delete(r.s.Net.Host, r.s.Net.Veth.Host)
		return err
	}
	return nil
}

func (r *run) release() error {
	if r.s.Started != nil {
		r.s.Started(r.res)
	}
	err := r.child.Release()
	if err == nil {
		r.res.Released = true
		if r.s.Released != nil {
			r.s.Released(r.res)
		}
		return nil
	}
	_ = r.cmd.Wait()
	if r.interrupted() {
		return nil
	}
	var se *ns.SetupError
	if errors.As(err, &se) {
		r.res.SetupFailed = se.Code
	} else if errors.Is(err, ns.ErrDied) {
		code, sig := exitStatus(r.cmd.ProcessState, nil)
		err = fmt.Errorf("%w (exit status %d%s); if a memory limit is set, it may be too low for it to start", err, code, sigName(sig))
	}
	return err
}

// wait waits for the payload to end and reads how it ended.
func (r *run) wait() {
	waitErr := wait(r.cmd, r.sigs, r.s.Grace, r.res)
	code, sig := exitStatus(r.cmd.ProcessState, waitErr)
	r.res.ExitCode, r.res.Signal = code, sig
	if r.res.Overlay != nil {
		r.res.Changes, _ = overlay.Changes(r.res.Overlay.Upper)
	}
	if r.cg != nil {
		if n, err := r.cg.OOMKills(); err == nil {
			r.res.OOMKills = n
			r.res.OOMKilled = n > 0
		}
		r.res.Counters, _ = r.cg.Counters()
	}
	c := code
	_ = r.j.Record(state.Entry{Op: "exit", Code: &c})
	if r.s.Exited != nil {
		r.s.Exited(r.res)
	}
}

func sigName(sig syscall.Signal) string {
	if sig == 0 {
		return ""
	}
	return ", " + sig.String()
}

// createCgroup records the cgroup, then makes it with the run's limit.
func createCgroup(j *state.Journal, cg cgroup.Manager, res *Result) error {
	if err := j.Record(state.Entry{Op: "cgroup", Path: cg.Path()}); err != nil {
		return err
	}
	if err := cg.Create(res.limit); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another run's (from another work directory): never touch it.
			_ = j.Record(state.Entry{Op: "cgroup-not-ours", Path: cg.Path()})
		}
		return err
	}
	if err := setLimits(cg, res); err != nil {
		return err
	}
	res.Cgroup, res.SwapLimited = cg.Path(), cg.SwapLimited()
	return nil
}

// setLimits sets the run's task and CPU limits. Every run with a cgroup
// gets a task limit, so that a fork storm stops there; the default one is
// skipped on a host without a pids controller, one asked for is not.
func setLimits(cg cgroup.Manager, res *Result) error {
	l := res.limits
	asked := l.Pids > 0
	if l.Pids == 0 {
		l.Pids = cgroup.DefaultPids
	}
	err := cg.SetLimits(l)
	if errors.Is(err, cgroup.ErrNoController) && !asked && l.CPUQuota == 0 {
		err = nil // no pids controller: the default limit is best effort
		l.Pids = 0
	}
	if err == nil {
		res.PidsLimit = l.Pids
	}
	return err
}

// reapOrphans ends what the payload left running (a background job of a
// shell without a PID namespace) and reaps it: as a subreaper, underhood
// is those processes' parent now, and they were started by this run.
func reapOrphans() {
	for range 50 {
		kids := children()
		if len(kids) == 0 {
			return
		}
		for _, k := range kids {
			_ = unix.Kill(k, unix.SIGKILL)
		}
		for _, k := range kids {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(k, &ws, 0, nil)
		}
	}
}

// children lists this process's children from /proc/self/task/*/children.
func children() []int {
	tasks, _ := os.ReadDir("/proc/self/task")
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// wait waits for the payload, forwarding signals; a payload that ignores a
// forwarded signal (a PID 1 without a handler does) is killed after grace.
func wait(cmd *exec.Cmd, sigs chan os.Signal, grace time.Duration, res *Result) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	for {
		select {
		case err := <-done:
			// A Ctrl-C that reached the payload's group too may end it
			// first: the signal underhood got at the same time still counts.
			select {
			case sg := <-sigs:
				if res.Interrupted == nil {
					res.Interrupted = sg
				}
			default:
			}
			return err
		case sg := <-sigs:
			if res.Interrupted != nil {
				res.GraceKilled = true
				_ = cmd.Process.Signal(syscall.SIGKILL)
				continue
			}
			res.Interrupted = sg
			fwd := sg
			if sg == syscall.SIGHUP {
				fwd = syscall.SIGTERM // the terminal is gone: ask it to end
			}
			_ = cmd.Process.Signal(fwd)
			timer = time.After(grace)
		case <-timer:
			res.GraceKilled = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
}

func exitStatus(ps *os.ProcessState, err error) (int, syscall.Signal) {
	if ps == nil {
		return 1, 0
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.ExitCode(), 0
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// terminal is the state of the terminal on stdin before the payload had it.
type terminal struct {
	pgrp    int
	termios *unix.Termios
}

func saveTerminal() terminal {
	t := terminal{pgrp: -1}
	if p, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		t.pgrp = p
	}
	if tio, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		t.termios = tio
	}
	return t
}

// restoreTerminal gives the foreground back to whoever had it and undoes
// the modes a killed shell left (no echo, no line editing).
func restoreTerminal(t terminal) {
	if t.pgrp > 0 {
		_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, t.pgrp)
	}
	if t.termios != nil {
		_ = unix.IoctlSetTermios(0, unix.TCSETS, t.termios)
	}
}

// reachable checks that uid, which owns nothing on the host, may walk
// every directory down to root: a user namespace's root has no power over
// the host's directories, and its first process must find its root.
func reachable(root string, uid int) error {
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return fmt.Errorf("user namespace: %s: %w", d, err)
		}
		if st.Mode&0o001 == 0 && int(st.Uid) != uid {
			return fmt.Errorf("user namespace: the container's root is %d on the host, which may not enter %s (mode %04o): chmod o+x %s, or use a --workdir that every user may enter", uid, d, st.Mode&0o7777, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// CopyIn is a host file to copy into a run's root: Dest is relative to it.
type CopyIn struct{ Dest, Src string }

// makeRoot builds a run's own root: a fresh one from BusyBox, or the image
// unpacked, or nothing to make when the overlay is mounted there already;
// then what the run adds to it.
func makeRoot(root string, s Spec, mounted bool) error {
	switch {
	case mounted:
	case s.Image != "":
		if _, err := image.Unpack(s.Image, s.ImageTag, root); err != nil {
			return fmt.Errorf("unpack image %s: %w", s.Image, err)
		}
	case s.Busybox == "":
		return errors.New("prepare container root: no BusyBox given")
	default:
		if err := rootfs.Fresh(root, s.Busybox); err != nil {
			return err
		}
	}
	return furnish(root, s.Flags&ns.BindDev != 0, s.CopyIn)
}
