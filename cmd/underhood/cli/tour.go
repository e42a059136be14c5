package cli

import (
	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// NewCmdTour makes the tour command.
func NewCmdTour(g *globals, runF func(*steps.TourOptions) error) *cobra.Command {
	var opt steps.TourOptions
	c := &cobra.Command{
		Use:   "tour [--no-pause] [--from N]",
		Short: "The instructor's live demo: every step, explained, run and pointed at",
		Long: `tour runs the workshop's steps in order, for an instructor to show on
a projector. For each step it prints what the step shows in two lines, the
article's shell commands, the underhood command, then runs a demo that needs
no typing (ls /proc and ps in the chroot, the process count with proc
mounted and in a PID namespace, the memory hog in a cgroup, a full container
with the inspector looking at it from the host) and ends with the one thing
to point at. On a terminal it waits for Enter between steps.

It needs root, and leaves nothing behind but the BusyBox and root filesystem
of the first two steps. The hog being killed (exit status 137) is what should
happen; tour exits 1 only when a step did not show what it should.`,
		Example: `  sudo underhood tour
  sudo underhood tour --from 5          # start at the PID namespace
  sudo underhood tour --no-pause 2>&1 | tee tour.txt`,
		GroupID: "tools",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("from") {
				if _, ok := steps.ByNumber(opt.From); !ok {
					return ui.Usagef("tour --from %d: not a step number; steps are %s", opt.From, steps.Numbers())
				}
			}
			if runF != nil {
				return runF(&opt)
			}
			return steps.Tour(cmd.Context(), g.io, g.workdir, opt)
		},
	}
	f := c.Flags()
	f.BoolVar(&opt.NoPause, "no-pause", false, "do not wait for Enter between steps (for recordings and tests)")
	f.IntVar(&opt.From, "from", 1, "start at step N; the container steps need the root filesystem to be prepared")
	f.StringVar(&opt.CgroupParent, "cgroup-parent", cgroup.DefaultParent, "the parent cgroup that holds underhood's cgroups")
	return c
}
