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
	var mem, cpus, level string
	c := &cobra.Command{
		Use:  s.Name + " [flags] [-- CMD [ARG...]]",
		Long: s.Long,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Argv = args
			opt.Context = cmd.Context()
			if s.Options&steps.WithMemory != 0 && cmd.Flags().Changed("memory") {
				v, err := cgroup.ParseSize(mem)
				if err != nil {
					return ui.Usage(err)
				}
				opt.Memory = v
			}
			if s.Options&steps.WithLimits != 0 {
				if err := parseLimits(cmd, cpus, &opt); err != nil {
					return err
				}
			}
			if s.Options&steps.WithIsolation != 0 {
				if err := opt.ApplyIsolation(level); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(&opt)
			}
			return s.Run(g.io, g.workdir, opt)
		},
	}
	c.Flags().SetInterspersed(false)
	if s.Options&steps.WithMemory != 0 {
		c.Flags().StringVar(&mem, "memory", "7340032", "memory limit: bytes, or with K, M or G (binary, like 7M or 7MiB)")
		c.Flags().StringVar(&opt.CgroupParent, "cgroup-parent", cgroup.DefaultParent, "the parent cgroup that holds underhood's cgroups")
	}
	if s.Options&steps.WithLimits != 0 {
		c.Flags().Int64Var(&opt.Pids, "pids", cgroup.DefaultPids, "the most processes and threads the container may have")
		c.Flags().StringVar(&cpus, "cpus", "", "CPU limit in CPUs, as docker's --cpus: 0.2 is 20 % of one CPU (default: none)")
	}
	if s.Options&steps.WithIsolation != 0 {
		c.Flags().BoolVar(&opt.PivotRoot, "pivot-root", false, "pivot_root into the container's root instead of chroot, the old root unmounted (step 8)")
		c.Flags().BoolVar(&opt.DropPrivileges, "drop-privileges", false, "runc's capabilities only, no_new_privs, a seccomp filter, masked /proc (step 10)")
		c.Flags().StringVar(&level, "isolation", steps.IsolationArticle, "article (the article's container) or full (--pivot-root, --drop-privileges and the task limit: all of Part 2)")
	}
	if s.Options&steps.WithName != 0 {
		c.Flags().StringVar(&opt.Name, "name", "", "the container's name, also its hostname (default: random)")
		c.Flags().BoolVar(&opt.Keep, "keep", false, "keep the run directory afterwards (remove it with 'underhood cleanup NAME')")
	}
	return stepCommand(g, s, c)
}

// parseLimits checks --pids and --cpus.
func parseLimits(cmd *cobra.Command, cpus string, opt *steps.ContainerOptions) error {
	if opt.Pids < 1 || opt.Pids > 4194304 {
		return ui.Usagef("--pids %d: give a number of processes from 1 to 4194304", opt.Pids)
	}
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
