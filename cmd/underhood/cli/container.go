package cli

import (
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
	var mem string
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
	if s.Options&steps.WithName != 0 {
		c.Flags().StringVar(&opt.Name, "name", "", "the container's name, also its hostname (default: random)")
		c.Flags().BoolVar(&opt.Keep, "keep", false, "keep the run directory afterwards (remove it with 'underhood cleanup NAME')")
	}
	return stepCommand(g, s, c)
}
