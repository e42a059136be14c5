// Package container runs one lab container from a Spec: it records every
// resource in the run's journal before creating it, starts the payload in
// its namespaces and cgroup, forwards signals, reports how it ended, and
// undoes everything afterwards. Cleanup replays journals left by runs that
// were cut short. It knows nothing of the workshop's step numbers.
package container

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	"github.com/underhood/underhood/lab/ns"
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

	// Memory is the cgroup memory limit in bytes; 0 means no cgroup.
	Memory       int64
	Cgroups      cgroup.Host
	CgroupParent string // "" means cgroup.DefaultParent

	Argv []string
	Env  []string

	Keep bool // keep the run directory afterwards

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Terminal       bool          // stdin is a terminal: give it to the payload
	Grace          time.Duration // after a forwarded signal, before SIGKILL
	Self           string        // executable to re-exec ("" = /proc/self/exe)

	// Started is called once the payload's process exists, before it runs,
	// with its PID as the host sees it.
	Started func(r *Result)
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
	Interrupted os.Signal      // SIGINT/SIGTERM that underhood received
	Kept        bool

	limit int64
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
	if s.Name == "" {
		s.Name = RandomName(s.Kind)
	}
	if s.CgroupParent == "" {
		s.CgroupParent = cgroup.DefaultParent
	}
	if s.Grace == 0 {
		s.Grace = DefaultGrace
	}
	res = &Result{Name: s.Name, limit: s.Memory}
	var cg cgroup.Manager
	if s.Memory > 0 {
		// Validate before anything exists on disk.
		if cg, err = cgroup.New(s.Cgroups, s.CgroupParent, s.Name); err != nil {
			return res, err
		}
	}
	if err := w.Ensure(); err != nil {
		return res, err
	}
	j, err := w.CreateRun(s.Name)
	if err != nil {
		return res, err
	}
	res.Dir = j.Dir
	defer func() {
		j.Close()
		reapOrphans()
		if cerr := undo(w, s.Cgroups, s.Name, s.Keep); cerr != nil && err == nil {
			err = cerr
		}
		res.Kept = s.Keep
	}()
	if err := j.Record(state.Entry{Op: "run", Name: s.Name, Kind: s.Kind, Memory: s.Memory, Created: time.Now().UTC()}); err != nil {
		return res, err
	}
	if st, err := proc.Host.StartTime(os.Getpid()); err == nil {
		_ = j.Record(state.Entry{Op: "owner", PID: os.Getpid(), Start: st})
	}

	root := s.Rootfs
	if root == "" {
		root = filepath.Join(j.Dir, "rootfs")
	}
	cmd := ns.Command(ns.Config{Self: s.Self, Clone: s.Clone, Flags: s.Flags, Root: root,
		Hostname: s.Hostname, Argv: s.Argv, Env: s.Env, Terminal: s.Terminal})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr

	// On cgroup v2 the child is born in its cgroup (clone3 with
	// CLONE_INTO_CGROUP), which costs nothing; on v1 it is moved there
	// below, while its runtime starts up.
	if cg != nil && cg.Version() == 2 {
		if err := createCgroup(j, cg, res); err != nil {
			return res, err
		}
		if dir, err := os.Open(cg.Path()); err == nil {
			defer dir.Close()
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = int(dir.Fd())
		}
	}

	// Forward SIGINT/SIGTERM from here on; with a terminal, the payload
	// owns the foreground and gets Ctrl-C straight from the tty.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if s.Terminal {
		signal.Ignore(syscall.SIGTTOU, syscall.SIGTTIN)
		defer reclaimTerminal()
	}

	// Pdeathsig follows the thread that started the child: keep this
	// goroutine on one thread until the payload is gone. As a subreaper,
	// underhood inherits what the payload leaves running, to end it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	// The child starts now and waits, blocked, until Release: its start-up
	// overlaps with making its root and its cgroup.
	child, err := ns.Start(cmd)
	if err != nil && cmd.SysProcAttr.UseCgroupFD {
		// A kernel before 5.7 has no CLONE_INTO_CGROUP: join after start.
		cmd = ns.Command(ns.Config{Self: s.Self, Clone: s.Clone, Flags: s.Flags, Root: root,
			Hostname: s.Hostname, Argv: s.Argv, Env: s.Env, Terminal: s.Terminal})
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
		child, err = ns.Start(cmd)
		if err == nil {
			err = cg.Join(cmd.Process.Pid)
			if err != nil {
				child.Abort()
			}
		}
	}
	if err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	res.HostPID = pid
	st, _ := proc.Host.StartTime(pid)
	if err := j.Record(state.Entry{Op: "pid", PID: pid, Start: st}); err != nil {
		child.Abort()
		return res, err
	}
	if s.Rootfs == "" {
		if err := j.Record(state.Entry{Op: "dir", Path: root}); err != nil {
			child.Abort()
			return res, err
		}
		if err := makeRoot(root, s.Busybox, s.Flags&ns.BindDev != 0); err != nil {
			child.Abort()
			return res, err
		}
	}
	if cg != nil && cg.Version() != 2 {
		if err := createCgroup(j, cg, res); err != nil {
			child.Abort()
			return res, err
		}
		if err := cg.Join(pid); err != nil {
			child.Abort()
			return res, err
		}
	}
	if s.Started != nil {
		s.Started(res)
	}
	if err := child.Release(); err != nil {
		_ = cmd.Wait()
		return res, err
	}

	waitErr := wait(cmd, sigs, s.Grace, res)
	code, sig := exitStatus(cmd.ProcessState, waitErr)
	res.ExitCode, res.Signal = code, sig
	if cg != nil {
		if n, err := cg.OOMKills(); err == nil {
			res.OOMKills = n
			res.OOMKilled = n > 0
		}
	}
	c := code
	_ = j.Record(state.Entry{Op: "exit", Code: &c})
	return res, nil
}

// createCgroup records the cgroup, then makes it with the run's limit.
func createCgroup(j *state.Journal, cg cgroup.Manager, res *Result) error {
	if err := j.Record(state.Entry{Op: "cgroup", Path: cg.Path()}); err != nil {
		return err
	}
	if err := cg.Create(res.limit); err != nil {
		return err
	}
	res.Cgroup, res.SwapLimited = cg.Path(), cg.SwapLimited()
	return nil
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
			return err
		case sg := <-sigs:
			if sg == syscall.SIGHUP {
				sg = syscall.SIGTERM
			}
			if res.Interrupted != nil {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				continue
			}
			res.Interrupted = sg
			_ = cmd.Process.Signal(sg)
			timer = time.After(grace)
		case <-timer:
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

// reclaimTerminal puts underhood's process group back in the terminal's
// foreground after the payload had it.
func reclaimTerminal() {
	_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
}

// makeRoot builds a run's own root: the layout, BusyBox, and the empty
// files that the device bind mounts cover.
func makeRoot(root, busybox string, devices bool) error {
	if busybox == "" {
		return errors.New("prepare container root: no BusyBox given")
	}
	if err := rootfs.Fresh(root, busybox); err != nil {
		return err
	}
	if devices {
		for _, d := range ns.Devices {
			p := filepath.Join(root, "dev", d)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("create bind-mount target %s: %w", p, err)
			}
			f.Close()
		}
	}
	return nil
}
