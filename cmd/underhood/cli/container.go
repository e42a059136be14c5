package cli

import (
	"math"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// NewCmdContainer makes the command of a container step: flags into
// options, then one call, runF (nil: the step's own Run). Everything after
// the flags (or after --) is the payload.
func NewCmdContainer(g *globals, s *steps.Step, runF func(*steps.ContainerOptions) error) *cobra.Command {
	var opt steps.ContainerOptions
	var mem, pids, cpus, level string
	var noPause bool
	c := &cobra.Command{
		Use:  s.Name + " [flags] [-- CMD [ARG...]]",
		Long: s.Long,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Argv = args
			opt.Context = cmd.Context()
			// An empty value is a mistake (an unset shell variable), not a
			// request for the default.
			for _, f := range []struct{ name, want string }{
				{"cgroup-parent", "a cgroup path below " + cgroup.DefaultParent + ", e.g. " + cgroup.DefaultParent + "/lab"},
				{"name", "a name of 1 to 63 letters, digits, '.', '_' or '-'"},
			} {
				if fl := cmd.Flags().Lookup(f.name); fl != nil && fl.Changed && fl.Value.String() == "" {
					return ui.Usagef("--%s \"\": give %s, or leave the flag out", f.name, f.want)
				}
			}
			if s.Options&steps.WithMemory != 0 {
				opt.ParentGiven = cmd.Flags().Changed("cgroup-parent")
			}
			if s.Options&steps.WithMemory != 0 && cmd.Flags().Changed("memory") {
				v, err := cgroup.ParseSize(mem)
				if err != nil {
					return ui.Usage(err)
				}
				opt.Memory = v
			}
			if s.Options&steps.WithLimits != 0 {
				if err := parseLimits(cmd, pids, cpus, &opt); err != nil {
					return err
				}
			}
			if s.Options&steps.WithNet != 0 {
				if err := steps.ValidNet(opt.Net); err != nil {
					return ui.Usage(err)
				}
			}
			if s.Options&steps.WithIsolation != 0 {
				if err := opt.ApplyIsolation(level); err != nil {
					return err
				}
			}
			if s.Options&steps.WithPauses != 0 && !noPause && g.io.InTTY && g.io.OutTTY {
				opt.Pause = steps.TerminalPause(cmd.Context(), g.io)
			}
			if runF != nil {
				return runF(&opt)
			}
			return s.Run(g.io, g.workdir, opt)
		},
	}
	c.Flags().SetInterspersed(false)
	if s.Options&steps.WithMemory != 0 {
		c.Flags().StringVar(&mem, "memory", "7340032", "memory limit: bytes, or with K, M, G or T (binary, like 7M or 7MiB)")
		c.Flags().StringVar(&opt.CgroupParent, "cgroup-parent", cgroup.DefaultParent, "the parent cgroup that holds underhood's cgroups")
	}
	if s.Options&steps.WithLimits != 0 {
		c.Flags().StringVar(&pids, "pids", strconv.Itoa(cgroup.DefaultPids), "the most processes and threads the container may have")
		c.Flags().StringVar(&cpus, "cpus", "", "CPU limit in CPUs, as docker's --cpus: 0.2 is 20 % of one CPU (default: none)")
	}
	if s.Options&steps.WithNet != 0 {
		c.Flags().StringVar(&opt.Net, "net", "host", "the network: host (the host's), none (only lo) or veth (a veth pair to the host)")
		c.Flags().BoolVar(&opt.Rootless, "rootless", false, "as a user, without sudo: a user namespace first, whose root is you; cgroup limits only in a cgroup delegated to you")
	}
	if s.Options&steps.WithImage != 0 {
		c.Flags().StringVar(&opt.Image, "image", "", "run an OCI image layout, DIR[:TAG], as the root (e.g. the image step's)")
	}
	if s.Options&steps.WithIsolation != 0 {
		c.Flags().BoolVar(&opt.PivotRoot, "pivot-root", false, "pivot_root into the container's root instead of chroot, the old root unmounted (step 8)")
		c.Flags().BoolVar(&opt.DropPrivileges, "drop-privileges", false, "runc's capabilities only, no_new_privs, a seccomp filter, masked /proc (step 10)")
		c.Flags().StringVar(&level, "isolation", steps.IsolationArticle, "article (the article's container) or full (--pivot-root, --drop-privileges, the task limit, IPC and cgroup namespaces: all of Part 2)")
	}
	if s.Options&steps.WithPauses != 0 {
		c.Flags().BoolVar(&noPause, "no-pause", false, "on a terminal too, do not wait for Enter between the step's parts")
	}
	if s.Options&steps.WithName != 0 {
		c.Flags().StringVar(&opt.Name, "name", "", "the container's name, also its hostname (default: random)")
		c.Flags().BoolVar(&opt.Keep, "keep", false, "keep the run directory afterwards (remove it with 'underhood cleanup NAME')")
	}
	return stepCommand(g, s, c)
}

// parseLimits checks --pids and --cpus.
func parseLimits(cmd *cobra.Command, pids, cpus string, opt *steps.ContainerOptions) error {
	// The limit holds from before the payload's exec: underhood's own
	// init (a Go program, a few threads) must fit in it too. Under 16, a
	// v2 child born in its cgroup could not start its threads.
	n, err := strconv.ParseInt(pids, 10, 64)
	if err != nil || n < steps.MinPids || n > 4194304 {
		return ui.Usagef("--pids %q: give a number of processes from %d to 4194304 (underhood's own init needs a few threads before the payload starts)", pids, steps.MinPids)
	}
	opt.Pids = n
	if !cmd.Flags().Changed("cpus") {
		return nil
	}
	f, err := strconv.ParseFloat(cpus, 64)
	if max := float64(runtime.NumCPU()); err != nil || f < 0.01 || f > max || math.IsNaN(f) {
		return ui.Usagef("--cpus %q: give a number of CPUs from 0.01 to %g (this machine's), e.g. 0.2 for 20 %% of one", cpus, max)
	}
	opt.CPUs = f
	return nil
}
