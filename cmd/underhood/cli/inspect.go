package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/inspect"
	"github.com/underhood/underhood/lab/ui"
)

// minWatch keeps --watch from spinning: below it a snapshot would take
// most of the interval.
const minWatch = 10 * time.Millisecond

type inspectFlags struct {
	pid      string
	json     bool
	watch    string
	sections []string
	// bareWatch is "--watch 2s": cobra leaves 2s as NAME, since the
	// interval of --watch needs "=".
	bareWatch string
}

// NewCmdInspect makes the inspect command.
func NewCmdInspect(g *globals) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [NAME | --pid PID] [--json] [--watch[=INTERVAL]]",
		Short: "Show a container as the host sees it: processes, namespaces, cgroup, mounts",
		Long: `Look at a lab container (by NAME, see 'underhood ps') or at any process
(--pid, a Docker or podman container's process too) from the host:

  Processes   every process of its PID namespace, with its PID outside and inside
  Namespaces  each namespace type, the host's and its own: isolated or shared
  cgroup      its memory cgroup, the path the host and it see, the key files
  Filesystem  its root directory, the mounts it sees, its hostname

Without NAME or --pid: every namespace on the host, grouped as lsns groups
them, with the lab's containers marked.

--watch redraws every INTERVAL (default 1s; give another as --watch=200ms)
until Ctrl-C, or until the target exits. On a terminal it redraws in place a
compact view that fits 80x24: the cgroup's files, the processes, the
namespaces; --section picks others (cgroup, processes, namespaces,
filesystem, or full for the whole report). Everything is read from /proc and
the cgroup files; nothing is changed. Other users' processes need root.`,
		Example: `  sudo underhood inspect box-1234
  sudo underhood inspect --pid 1 --json
  sudo underhood inspect box-1234 --watch=200ms
  sudo underhood inspect box-1234 --watch --section cgroup`,
		GroupID: "tools",
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, name, err := f.options(cmd, args)
			if err != nil {
				return err
			}
			labs, err := runningLabs(g, name, &opt)
			if err != nil {
				if f.bareWatch != "" {
					return ui.Usagef("inspect: give the interval with '=': --watch=%s", f.bareWatch)
				}
				return err
			}
			src, err := inspect.Default(labs)
			if err != nil {
				return err
			}
			return inspectErr(inspect.Run(cmd.Context(), g.io, src, opt), name, opt.PID, os.Geteuid())
		},
	}
	c.Flags().StringVar(&f.pid, "pid", "", "inspect the process with this host PID instead of a lab container")
	c.Flags().BoolVar(&f.json, "json", false, "print JSON (with --watch, one document per line)")
	c.Flags().StringVar(&f.watch, "watch", "", "refresh every INTERVAL (like 1s or 200ms) until Ctrl-C or the target exits")
	c.Flags().Lookup("watch").NoOptDefVal = "1s"
	c.Flags().StringSliceVar(&f.sections, "section", nil, "show only these sections, compactly: "+strings.Join(inspect.Sections, ", "))
	return c
}

// options checks the arguments and flags: every mistake is a usage error.
func (f *inspectFlags) options(cmd *cobra.Command, args []string) (inspect.Options, string, error) {
	opt := inspect.Options{JSON: f.json, Sections: f.sections}
	if err := inspect.CheckSections(f.sections); err != nil {
		return opt, "", ui.Usagef("inspect --%v", err)
	}
	watching := cmd.Flags().Changed("watch")
	if watching {
		d, err := parseInterval(f.watch)
		if err != nil {
			return opt, "", err
		}
		opt.Watch = d
	}
	if len(args) > 1 {
		if _, err := parseInterval(args[len(args)-1]); err == nil && watching {
			return opt, "", ui.Usagef("inspect: give the interval with '=': --watch=%s", args[len(args)-1])
		}
		return opt, "", ui.Usagef("inspect takes one NAME, got %q (see 'underhood inspect --help')", strings.Join(args, " "))
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
		if _, err := parseInterval(name); err == nil && watching {
			f.bareWatch = name
		}
	}
	if f.pid != "" || cmd.Flags().Changed("pid") {
		if name != "" {
			return opt, "", ui.Usagef("inspect: give NAME or --pid, not both")
		}
		n, err := strconv.Atoi(strings.TrimSpace(f.pid))
		if err != nil || n <= 0 {
			return opt, "", ui.Usagef("inspect --pid %q: not a process ID; give a positive number", f.pid)
		}
		opt.PID = n
	}
	return opt, name, nil
}

// parseInterval reads a --watch interval: a Go duration, or plain seconds.
func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, ui.Usagef("--watch %q: not an interval; give one like 1s, 500ms or 2", s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < minWatch {
		return 0, ui.Usagef("--watch %q: the shortest interval is %v", s, minWatch)
	}
	return d, nil
}

// runningLabs lists the lab's running containers, and resolves name (if
// any) to its payload's PID.
func runningLabs(g *globals, name string, opt *inspect.Options) ([]inspect.Lab, error) {
	list, err := container.List(g.workdir)
	if err != nil {
		if name != "" {
			return nil, err
		}
		list = nil // the host overview and --pid do without names
	}
	var labs []inspect.Lab
	found := false
	for _, s := range list {
		if s.Name == name {
			found = true
			if s.State == container.Stale {
				return nil, fmt.Errorf("lab container %s is stale (its underhood ended without cleaning up): nothing to inspect; remove what it left with 'sudo underhood cleanup %s'", name, name)
			}
			if s.State != container.Running || s.HostPID <= 0 {
				return nil, fmt.Errorf("lab container %s is %s, not running: nothing to inspect; see 'underhood ps'", name, s.State)
			}
			opt.PID = s.HostPID
		}
		if s.State == container.Running && s.HostPID > 0 {
			labs = append(labs, inspect.Lab{Name: s.Name, Kind: s.Kind, PID: s.HostPID})
		}
	}
	if name != "" && !found {
		return nil, fmt.Errorf("no lab container %s; see 'underhood ps'", name)
	}
	return labs, nil
}

// inspectErr says what to do about an unreadable process: without root,
// run again with sudo; as root, that the kernel refuses anyway.
func inspectErr(err error, name string, pid, euid int) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	again := "sudo underhood inspect"
	switch {
	case name != "":
		again += " " + name
	case pid > 0:
		again += fmt.Sprintf(" --pid %d", pid)
	}
	if euid != 0 {
		return fmt.Errorf("needs root: run %s (%v)", again, err)
	}
	return fmt.Errorf("%w: the kernel refuses even root here (the process is protected from inspection, e.g. it holds a capability this one lacks)", err)
}
