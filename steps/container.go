package steps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// readyToRun: a container step leaves nothing behind, so it can run when
// the root it needs is in place.
func readyToRun(w state.Workdir) (bool, string) {
	if err := rootfs.Check(w.Rootfs()); err != nil {
		return false, "needs " + of("rootfs").Label()
	}
	return true, "ready"
}

// ContainerOptions are what a user can set on steps 3–7.
type ContainerOptions struct {
	Argv         []string // the payload; empty = the step's default
	Memory       int64    // steps 6 and 7; 0 = cgroup.DefaultLimit
	Pids         int64    // task limit; 0 = cgroup.DefaultPids
	CPUs         float64  // CPU limit in CPUs (0.2 = 20 % of one); 0 = none
	Name         string   // step 7; "" = random
	Net          string   // step 7: host (""), none or veth; see NetModes
	Isolation    string   // step 7: article (""), or full: all of Part 2 (see ApplyIsolation)
	Rootless     bool     // step 7: as a user, in a user namespace first; limits only in a delegated cgroup
	Keep         bool     // step 7
	Image        string   // step 7: an OCI image layout, DIR[:TAG], as the root
	CgroupParent string
	// ParentGiven: --cgroup-parent was on the command line, its default
	// value too: a rootless run refuses it when it is not the user's.
	ParentGiven bool
	CgroupRoot  string // "" = /sys/fs/cgroup
	Self        string // the container's first program; "" = underhood-init or /proc/self/exe
	// PivotRoot and DropPrivileges are Part 2's steps 8 and 10 in run:
	// pivot_root instead of chroot; runc's capabilities, no_new_privs,
	// seccomp and masked /proc.
	PivotRoot      bool
	DropPrivileges bool
	// Shown is how the step's banner names the payload, where Argv is a
	// wrapper (the tour's scripted shells); "" = Argv itself.
	Shown string
	// Context is cancelled by SIGINT/SIGTERM/SIGHUP from the program's
	// start; a signal that came before the step began stops it.
	Context context.Context
	// Pause, if set, waits before the next part of a step's output (what
	// names it), so that each part fits one screen: on a terminal, Enter.
	Pause func(what string) error
}

// more pauses before the next part of a step, where opt has a Pause.
func (opt ContainerOptions) more(what string) error {
	if opt.Pause == nil {
		return nil
	}
	return opt.Pause(what)
}

// TerminalPause is a Pause for a person at a terminal: it shows
// "[Enter] what" on o's error stream and waits for a line from o.In; a
// signal (Ctrl-C) that cancels ctx stops the step, saying so.
func TerminalPause(ctx context.Context, o *ui.IO) func(string) error {
	in := bufio.NewReader(o.In)
	return func(what string) error {
		return waitEnter(ctx, o, in, "[Enter] "+what, "(Ctrl-C stops)",
			fmt.Errorf("stopped before %s; what ran before is removed, nothing is left behind", what))
	}
}

// waitEnter shows prompt and waits for Enter; a cancelled ctx gives
// stopped. The reminder (how to stop) goes on the prompt's line where it
// fits the terminal, else on a line of its own above it.
func waitEnter(ctx context.Context, o *ui.IO, in *bufio.Reader, prompt, reminder string, stopped error) error {
	if w := o.Width; w > 0 && ui.Width(prompt)+3+ui.Width(reminder)+1 > w {
		fmt.Fprintf(o.Err, "%s\n%s ", o.Faint(prompt), o.Faint(reminder))
	} else {
		fmt.Fprintf(o.Err, "%s ", o.Faint(prompt+"   "+reminder))
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.ReadString('\n')
		done <- err
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(o.Err)
		return &ui.ExitError{Code: interruptCode(ctx), Err: stopped}
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the terminal: %w", err)
		}
	}
	return nil // the terminal's echo of Enter ended the prompt's line
}

var shell = []string{"/bin/busybox", "sh"}

// try suggests what to type in the step's interactive shell; a step given
// a command runs that instead, and the suggestion would only be noise.
func try(o *ui.IO, opt ContainerOptions, what string) {
	if len(opt.Argv) == 0 {
		o.Note("Try %s Type exit to leave.", what)
	}
}

func start(o *ui.IO, w state.Workdir, opt ContainerOptions, spec container.Spec, def []string) error {
	spec.Argv = opt.Argv
	if len(spec.Argv) == 0 {
		spec.Argv = def
	}
	res, err := launch(o, w, opt, &spec)
	if err != nil {
		return err
	}
	report(o, spec, res)
	code := res.Status()
	if res.Released && res.Interrupted == nil {
		// Best effort: progress is for 'underhood steps' to show.
		_ = w.RecordProgress(spec.Kind, time.Now())
		if len(opt.Argv) == 0 && opt.Rootless {
			// A user without sudo: the steps' commands are root's.
			o.Next("back to docs/13-user-namespace.md, where you were")
		} else if len(opt.Argv) == 0 {
			if s, ok := ByName(spec.Kind); ok {
				next := s.NextHint()
				if ov := Where(w, time.Now()); ov.AllDone {
					next = ov.Next // not back to the step after this one
				}
				o.Next(next)
			}
		}
		// An interactive shell left with exit or Ctrl-D after a Ctrl-C
		// returns that command's 130: the step itself went fine.
		if spec.Terminal && res.Signal == 0 && code == 130 {
			code = 0
		}
	}
	if code != 0 {
		return &ui.ExitError{Code: code}
	}
	return nil
}

// launch runs spec (its Argv set) with the step's streams, and turns a
// start that failed into the shell's exit status.
func launch(o *ui.IO, w state.Workdir, opt ContainerOptions, spec *container.Spec) (*container.Result, error) {
	return launchTee(o, w, opt, spec, nil)
}

// launchTee is launch with a copy of the payload's output kept in tee.
func launchTee(o *ui.IO, w state.Workdir, opt ContainerOptions, spec *container.Spec, tee io.Writer) (*container.Result, error) {
	if spec.Env == nil {
		spec.Env = containerEnv()
	}
	spec.Self = opt.Self
	if in, ok := o.In.(*os.File); ok {
		spec.Stdin = in
	} else {
		spec.Stdin = o.In
	}
	spec.Stdout, spec.Stderr = o.Out, o.Err
	if tee != nil {
		spec.Stdout = io.MultiWriter(o.Out, tee)
		if o.Width > 0 {
			// Through a pipe the payload cannot see the terminal's width;
			// underhood's own escape wraps its verdict to COLUMNS.
			spec.Env = append(spec.Env, fmt.Sprintf("COLUMNS=%d", o.Width))
		}
	}
	// On the terminal in front of the user: the interactive shell gets the
	// terminal to itself (Ctrl-C is the shell's); a command stays in
	// underhood's process group, so Ctrl-C reaches underhood too, which
	// stops the command even when, as PID 1, it ignores SIGINT. A step's
	// own scripted demo (the fork bomb, the busy loop) is a command too:
	// given the terminal, Ctrl-C ended only its children, and the step went
	// on to its next part (walkthrough 15).
	if o.InTTY && foregroundTerminal() {
		shell := len(opt.Argv) == 0 && interactive(spec.Argv)
		spec.Terminal, spec.SameGroup = shell, !shell
	}
	spec.Context = opt.Context
	if spec.Memory == 0 {
		// No limit in this step, but a cgroup all the same, to find and
		// end every process of the run afterwards, whatever it started.
		spec.Track, spec.CgroupParent = true, opt.CgroupParent
		spec.Cgroups, _ = memoryHost(opt)
	}
	res, err := container.Run(w, *spec)
	if err != nil && res != nil && res.SetupFailed != 0 {
		return res, &ui.ExitError{Code: res.SetupFailed, Err: err}
	}
	return res, err
}

// report says how the payload ended, in the kernel's own terms.
func report(o *ui.IO, spec container.Spec, r *container.Result) {
	if r.Interrupted != nil {
		if !r.Released {
			o.Note("underhood got %v before the payload started: nothing ran, and everything was removed.", r.Interrupted)
			return
		}
		if r.GraceKilled {
			o.Note("underhood got %v and passed it on; the payload did not stop within %v (a PID 1 ignores signals it has no handler for), so underhood killed it. Everything was removed.", r.Interrupted, container.DefaultGrace)
		} else {
			o.Note("underhood got %v and passed it on: the payload stopped, and everything was removed.", r.Interrupted)
		}
		return
	}
	if spec.Memory > 0 {
		switch {
		case r.OOMKilled && r.Signal == syscall.SIGKILL:
			o.Note("%s the kernel's OOM killer ended %s in the cgroup (oom_kill = %d): it asked for more than %s. Exit status %d = 128 + SIGKILL.",
				o.Red("Killed:"), plural(r.OOMKills, "process", "processes"), r.OOMKills, cgroup.FormatSize(spec.Memory), r.ExitCode)
		case r.OOMKilled:
			o.Note("%s the kernel's OOM killer ended %s in the cgroup (oom_kill = %d) at the %s limit; the payload itself went on and exited with status %d.",
				o.Red("Killed:"), plural(r.OOMKills, "process", "processes"), r.OOMKills, cgroup.FormatSize(spec.Memory), r.ExitCode)
		case r.Signal == syscall.SIGKILL:
			o.Note("The payload was killed by SIGKILL, but not by the OOM killer: the cgroup's oom_kill counter stayed at 0.")
		case spec.Kind == "cgroup" && r.ExitCode == 0:
			o.Note("The payload stayed within %s and exited normally.", cgroup.FormatSize(spec.Memory))
		}
	}
	if r.Signal != 0 && !r.OOMKilled && r.Interrupted == nil && r.Signal != syscall.SIGKILL {
		o.Note("The payload was ended by signal %v (exit status %d).", r.Signal, r.ExitCode)
	}
	if r.Kept {
		o.Note("Kept %s (--keep); remove it with 'sudo underhood cleanup %s'.", r.Dir, r.Name)
	} else if spec.Kind == "run" && r.Cgroup == "" {
		o.Note("Cleaned up: mounts and run directory removed.")
	} else if spec.Kind == "run" || spec.Memory > 0 {
		o.Note("Cleaned up: cgroup, mounts and run directory removed.")
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sharedRoot checks the preconditions of a container step that runs in the
// shared root filesystem: root, and that root in place.
func sharedRoot(w state.Workdir, s *Step) (string, error) {
	if err := needRoot(s.Name); err != nil {
		return "", err
	}
	root := w.Rootfs()
	if err := rootfs.Check(root); err != nil {
		prep := of("rootfs")
		return "", ui.Usagef("%v; run 'sudo %s' (%s)", err, prep.Command(), prep.Label())
	}
	return root, nil
}

func needRoot(cmd string) error {
	if os.Geteuid() != 0 {
		return ui.Usagef("%s needs root (namespaces, mounts and cgroups are privileged): run 'sudo underhood %s'", cmd, cmd)
	}
	return nil
}

func memoryHost(opt ContainerOptions) (cgroup.Host, error) {
	root := opt.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	h, err := cgroup.Detect(root)
	if err != nil {
		return h, err
	}
	if h.MemoryVersion == 0 {
		return h, fmt.Errorf("no memory cgroup controller under %s (layout %s): run 'underhood doctor' for what to change", root, h.Layout)
	}
	parent := opt.CgroupParent
	if parent == "" {
		parent = cgroup.DefaultParent
	}
	if _, err := cgroup.New(h, parent, "check"); err != nil {
		return h, ui.Usage(fmt.Errorf("--cgroup-parent %q: %w", parent, err))
	}
	return h, nil
}

func limitOf(opt ContainerOptions) int64 {
	if opt.Memory > 0 {
		return opt.Memory
	}
	return cgroup.DefaultLimit
}

// containerEnv is the payload's whole environment inside a container:
// nothing of the host's leaks in but the terminal type.
func containerEnv() []string {
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/"}
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	return env
}

// hostEnv is for a payload on the host's filesystem (step 6): bin, the
// directory of the lab's verified BusyBox, first in PATH. Never a root
// filesystem's bin/, where a payload of steps 3–5 could plant any command.
func hostEnv(bin string) []string {
	env := []string{"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	return env
}

// interactive reports whether argv is a shell that reads the terminal:
// sh, ash or bash (busybox's too) with no script (-c) and nothing to run.
func interactive(argv []string) bool {
	if len(argv) == 0 {
		return true
	}
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") && filepath.Base(a) != "sh" || strings.HasPrefix(a, "-") && strings.Contains(a, "c") {
			return false
		}
	}
	switch filepath.Base(argv[0]) {
	case "sh", "ash", "bash":
		return true
	case "busybox":
		return len(argv) > 1 && filepath.Base(argv[1]) == "sh"
	}
	return false
}

// foregroundTerminal reports whether stdin is this process's controlling
// terminal and underhood is in its foreground: only then can the payload
// be given the terminal (not on a bare serial console, nor from a job
// started with &).
func foregroundTerminal() bool {
	p, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && p == unix.Getpgrp()
}

// stepTag is how a step's notes begin: "Step 3:".
func stepTag(o *ui.IO, s *Step) string { return o.Cyan(fmt.Sprintf("Step %d:", s.N)) }

// payloadName is what a step runs, for its first note.
func payloadName(opt ContainerOptions) string {
	if opt.Shown != "" {
		return opt.Shown
	}
	if len(opt.Argv) == 0 {
		return "a BusyBox shell"
	}
	return strings.Join(opt.Argv, " ")
}

// Isolation names for --isolation.
const (
	IsolationArticle = "article" // the article's container: chroot, every capability
	IsolationFull    = "full"    // every Part 2 step that has landed
)

// Isolations are the values --isolation takes, the default first.
var Isolations = []string{IsolationArticle, IsolationFull}

// MinPids is the smallest task limit a container may have: its first
// process is underhood's init, whose Go runtime starts a few threads in
// the cgroup before it becomes the payload.
const MinPids = 16

// ApplyIsolation turns a --isolation level into the flags it stands for.
func (o *ContainerOptions) ApplyIsolation(level string) error {
	switch level {
	case IsolationArticle:
	case IsolationFull:
		o.PivotRoot, o.DropPrivileges = true, true
	default:
		return ui.Usagef("--isolation %q: give %s (the article's container, the default) or %s (pivot_root, runc's privileges, the task limit, IPC and cgroup namespaces: all of Part 2)", level, IsolationArticle, IsolationFull)
	}
	o.Isolation = level
	return nil
}

// isolate applies the Part 2 options to a full container's spec.
func isolate(s *container.Spec, opt ContainerOptions) {
	if opt.PivotRoot {
		s.Flags = s.Flags&^ns.Chroot | ns.PivotRoot
	}
	if opt.DropPrivileges {
		s.Flags |= ns.MaskPaths | ns.DropPrivileges
	}
	s.Limits = limitsOf(opt)
}

// isolation says in a few words what a full container holds beyond the
// article's.
func isolation(s container.Spec) string {
	var out []string
	if s.Flags&ns.PivotRoot != 0 {
		out = append(out, "pivot_root")
	} else {
		out = append(out, "chroot")
	}
	if s.Flags&ns.DropPrivileges != 0 {
		out = append(out, "runc's capabilities, no_new_privs, seccomp, masked /proc")
	} else if s.Users != 0 {
		// Root of its user namespace: its capabilities hold there only.
		out = append(out, "every capability, over its own namespaces only")
	} else {
		out = append(out, "every capability of root")
	}
	return strings.Join(out, ", ")
}

// limitsOf are the task and CPU limits the user asked for.
func limitsOf(opt ContainerOptions) cgroup.Limits {
	l := cgroup.Limits{Pids: opt.Pids}
	if opt.CPUs > 0 {
		l.CPUPeriod = cgroup.DefaultCPUPeriod
		l.CPUQuota = int64(opt.CPUs * cgroup.DefaultCPUPeriod)
	}
	return l
}

// interruptCode is the exit status for a context cancelled by a signal:
// 128 + the signal that came, from the context's cause; 130 (SIGINT) when
// the cause does not say.
func interruptCode(ctx context.Context) int {
	var sg interface{ Signal() os.Signal }
	if errors.As(context.Cause(ctx), &sg) {
		if n, ok := sg.Signal().(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 130
}
