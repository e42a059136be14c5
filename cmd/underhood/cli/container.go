package cli

import (
	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// containerStep makes the command of steps 3–7: flags into options, then
// one call. Everything after the flags (or after --) is the payload.
func containerStep(g *globals, n int, use string, memory, run bool,
	fn func(*ui.IO, state.Workdir, steps.ContainerOptions) error) *cobra.Command {
	var opt steps.ContainerOptions
	var mem string
	c := &cobra.Command{
		Use: use + " [flags] [-- CMD [ARG...]]",
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Argv = args
			opt.Context = cmd.Context()
			if memory && cmd.Flags().Changed("memory") {
				v, err := cgroup.ParseSize(mem)
				if err != nil {
					return ui.Usage(err)
				}
				opt.Memory = v
			}
			return fn(g.io, g.workdir, opt)
		},
	}
	c.Flags().SetInterspersed(false)
	if memory {
		c.Flags().StringVar(&mem, "memory", "7340032", "memory limit: bytes, or with K, M or G (binary, like 7M or 7MiB)")
		c.Flags().StringVar(&opt.CgroupParent, "cgroup-parent", cgroup.DefaultParent, "the parent cgroup that holds underhood's cgroups")
	}
	if run {
		c.Flags().StringVar(&opt.Name, "name", "", "the container's name, also its hostname (default: random)")
		c.Flags().BoolVar(&opt.Keep, "keep", false, "keep the run directory afterwards (remove it with 'underhood cleanup NAME')")
	}
	return stepCommand(g, n, c)
}

func init() {
	addCommand(func(g *globals) *cobra.Command {
		c := containerStep(g, 3, "chroot", false, false, steps.Chroot)
		c.Long = "Start a BusyBox shell (or CMD) chrooted into the lab's root filesystem.\nInside, 'busybox ls /proc' and 'busybox ps -A' show nothing."
		return c
	})
	addCommand(func(g *globals) *cobra.Command {
		c := containerStep(g, 4, "mount-proc", false, false, steps.MountProc)
		c.Long = "Mount proc in the root filesystem (in a private mount namespace), then chroot.\nInside, 'busybox ps -A' lists every process of the host."
		return c
	})
	addCommand(func(g *globals) *cobra.Command {
		c := containerStep(g, 5, "unshare", false, false, steps.Unshare)
		c.Long = "Start the shell in new PID and mount namespaces with a proc of its own, chrooted.\nInside, 'busybox ps -A' shows only PID 1: the shell."
		return c
	})
	addCommand(func(g *globals) *cobra.Command {
		c := containerStep(g, 6, "cgroup", true, false, steps.Cgroup)
		c.Long = "Run CMD (default: the article's memory hog) in a memory cgroup with a limit.\nThe hog is killed by the kernel's OOM killer: exit status 137."
		return c
	})
	addCommand(func(g *globals) *cobra.Command {
		c := containerStep(g, 7, "run", true, true, steps.Run)
		c.Long = "Run a full container: its own root filesystem, a memory cgroup, new PID, mount\nand UTS namespaces, proc and a few devices mounted, chroot, CMD as PID 1.\nEverything is removed afterwards."
		return c
	})
}
