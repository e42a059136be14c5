package cli

import (
	"github.com/spf13/cobra"

	"github.com/underhood/underhood/steps"
)

// NewCmdRootfs makes the rootfs command.
func NewCmdRootfs(g *globals, s *steps.Step) *cobra.Command {
	var opt steps.RootfsOptions
	c := &cobra.Command{
		Use: "rootfs",
		Long: `Prepare the root filesystem that the container steps chroot into: the
directories bin, dev, etc, proc and sys in <workdir>/rootfs, and a copy of
BusyBox as bin/busybox. Downloads BusyBox first if that step was skipped.
Running it again is harmless.`,
		Example: `  sudo underhood rootfs
  sudo underhood rootfs --links   # then ls works as well as busybox ls`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return steps.Rootfs(cmd.Context(), g.io, g.workdir, opt)
		},
	}
	c.Flags().BoolVar(&opt.Links, "links", false, "add a symlink bin/<applet> -> busybox for every BusyBox applet")
	return stepCommand(g, s, c)
}
