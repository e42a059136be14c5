package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// NewCmdCleanup makes the cleanup command.
func NewCmdCleanup(g *globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:     "cleanup [NAME | --all]",
		Short:   "Undo lab runs that were cut short: processes, mounts, cgroups, directories",
		GroupID: "tools",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return ui.Usagef("cleanup: give either a run name or --all, not both (got %q and --all)", strings.Join(args, " "))
			case !all && len(args) != 1:
				return ui.Usagef("cleanup: give one run name (see 'underhood ps') or --all")
			case len(args) == 1:
				if err := state.ValidName(args[0]); err != nil {
					return ui.Usage(err)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return ui.Usagef("cleanup needs root (it removes cgroups and mounts): run 'sudo underhood %s'", strings.Join(os.Args[1:], " "))
			}
			host, _ := cgroup.Detect("/sys/fs/cgroup")
			var reps []container.Report
			var err error
			if all {
				reps, err = container.CleanupAll(g.workdir, host)
			} else {
				if _, serr := os.Lstat(g.workdir.Run(args[0])); os.IsNotExist(serr) {
					return fmt.Errorf("cleanup: no run named %s in %s (see 'sudo underhood ps')", args[0], g.workdir.Runs())
				}
				var r container.Report
				r, err = container.Cleanup(g.workdir, host, args[0])
				if !r.Empty() {
					reps = append(reps, r)
				}
			}
			var notOurs *state.NotOursError
			if errors.As(err, &notOurs) {
				return ui.Usage(err) // a --workdir that is not underhood's: nothing touched
			}
			live := 0
			for _, r := range reps {
				if r.Foreign != "" {
					live++
					g.io.Wrapf("%s %s: not underhood's (%s): left alone; if it is yours, move it out of %s\n",
						g.io.Yellow("left"), r.Name, r.Foreign, g.workdir.Runs())
					continue
				}
				if r.Live != 0 {
					live++
					how := "stop it in its terminal (exit, or Ctrl-C)"
					if r.Live > 0 {
						how += fmt.Sprintf(", or with 'sudo kill -TERM %d'", r.Live)
					}
					g.io.Printf("%s %s: it is running; its own underhood cleans up when it ends: %s\n", g.io.Yellow("left"), r.Name, how)
					continue
				}
				g.io.Printf("%s %s\n", g.io.Bold("cleaned"), r.Name)
				for _, p := range r.Killed {
					g.io.Printf("  killed process %d\n", p)
				}
				if r.Skipped > 0 {
					g.io.Printf("  ignored %d journal line(s) over 64 KiB: underhood writes none\n", r.Skipped)
				}
				for _, sp := range r.Spared {
					g.io.Wrapf("  %s %s\n", g.io.Yellow("left"), sp)
				}
				for _, m := range r.Unmounted {
					g.io.Printf("  unmounted %s\n", m)
				}
				for _, c := range r.Cgroups {
					g.io.Printf("  removed cgroup %s\n", c)
				}
				for _, c := range r.Cleared {
					g.io.Printf("  cleared the immutable flag of %s\n", c)
				}
				for _, v := range r.Veths {
					g.io.Printf("  removed veth %s\n", v)
				}
				if r.Removed != "" {
					g.io.Printf("  removed %s\n", r.Removed)
				}
			}
			if err != nil {
				return err
			}
			switch {
			case len(reps) == 0:
				g.io.Say("Nothing to clean up.")
			case len(reps) == live:
				g.io.Say("Nothing else to clean up.")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "clean up every run in the work directory")
	return c
}
