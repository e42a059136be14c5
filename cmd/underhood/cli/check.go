package cli

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

func init() {
	addCommand(func(g *globals) *cobra.Command {
		var opt steps.CheckOptions
		c := &cobra.Command{
			Use:   "check N [--rootfs DIR] [--json]",
			Short: "Check that step N left what it should, with a hint for each missing piece",
			Long: `check looks at the state step N should leave and says, for each piece,
whether it is there, and if not what is missing and the command that makes
it. It is for doing a step by hand with the article's shell commands, and for
instructors who want to see who is stuck. It exits 0 only when every check
passes, 1 otherwise.

  1  a BusyBox that is executable, static and runs
  2  the root filesystem: bin dev etc proc sys, and bin/busybox
  3  BusyBox runs chrooted into it
  4  proc mounted in it (while you explore) or unmounted again (when done);
     with proc, the chroot sees the host's processes
  5  unshare, PID and mount namespaces; a shell alone as PID 1
  6  a memory cgroup with the article's limit of 7340032 bytes: the one made
     by hand (/sys/fs/cgroup/memory/busybox, or /sys/fs/cgroup/busybox on
     cgroup v2), and without --rootfs a probe like underhood's own
  7  nothing left behind: runs, mounts, cgroups, processes

Without --rootfs it looks at underhood's own work directory; give --rootfs
for the tree you made by hand (~/container in the article), and --busybox for
the BusyBox you downloaded by hand (step 1). Checks 3 to 6 try things for
real, which needs root; they leave nothing behind.`,
			Example: `  sudo underhood check 2
  sudo underhood check 4 --rootfs ~/container
  underhood check 1 --busybox ~/Downloads/busybox
  sudo underhood check 7 --json`,
			GroupID: "tools",
			Args:    checkArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				n, _ := strconv.Atoi(args[0])
				for _, p := range []*string{&opt.Rootfs, &opt.Busybox} {
					if *p == "" {
						continue
					}
					abs, err := filepath.Abs(*p)
					if err != nil {
						return ui.Usage(err)
					}
					*p = abs
				}
				return steps.Check(g.io, g.workdir, n, opt)
			},
		}
		f := c.Flags()
		f.StringVar(&opt.Rootfs, "rootfs", "", "check this root filesystem, made by hand (e.g. ~/container), instead of underhood's")
		f.StringVar(&opt.Busybox, "busybox", "", "for step 1: check this BusyBox, downloaded by hand (e.g. ~/Downloads/busybox)")
		f.BoolVar(&opt.JSON, "json", false, "print the checks as JSON")
		return c
	})
}

// checkArgs wants one step number, and paths the shell has expanded.
func checkArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return ui.Usagef("check takes one step number, got %d arguments (e.g. 'underhood check 3'; see 'underhood check --help')", len(args))
	}
	n, err := strconv.Atoi(args[0])
	if _, ok := steps.ByNumber(n); err != nil || !ok {
		return ui.Usagef("check %q: not a step number; steps are %s (see 'underhood steps')", args[0], steps.Numbers())
	}
	for _, name := range []string{"rootfs", "busybox"} {
		if v, _ := cmd.Flags().GetString(name); strings.HasPrefix(v, "~") {
			return ui.Usagef("--%s %s: the shell did not expand ~; write --%s ~/… with a space, not =, or give the whole path", name, v, name)
		}
	}
	return nil
}
