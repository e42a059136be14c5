package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// globals are the flags every command shares, resolved once.
type globals struct {
	workdirFlag string
	noColor     bool

	io      *ui.IO
	workdir state.Workdir
}

// Execute runs underhood with args (os.Args[1:]) and returns its exit status.
func Execute(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	g := &globals{}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if g.io == nil {
		g.io = ui.System(true)
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		err = ui.Usagef("%v", err)
	}
	if msg := ui.Message(err); msg != "" {
		fmt.Fprintf(g.io.Err, "%s %s\n", g.io.Red("underhood:"), msg)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return 130
	}
	return ui.ExitCode(err)
}

func newRootCmd(g *globals) *cobra.Command {
	cobra.EnableCommandSorting = false
	root := &cobra.Command{
		Use:   "underhood",
		Short: "Build a Linux container by hand, one step at a time",
		Long: `underhood takes the magic out of containers. Each workshop step is a
command of its own: download BusyBox, prepare a root filesystem, chroot into
it, mount /proc, isolate processes with a PID namespace, limit memory with a
cgroup, and finally put it all together.

Start with "underhood steps" to see the steps and where you are, and
"underhood doctor" to check that this machine can run them. The steps need
root (namespaces, mounts, cgroups, and the work directory in /var/lib):
run them with sudo.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.io = ui.System(g.noColor)
			wd, err := state.Resolve(g.workdirFlag)
			if err != nil {
				return ui.Usage(err)
			}
			g.workdir = wd
			return nil
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return ui.Usagef("%v (see '%s --help')", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.workdirFlag, "workdir", "", "directory for everything underhood creates (default $UNDERHOOD_HOME or "+state.DefaultRoot+")")
	pf.BoolVar(&g.noColor, "no-color", false, "plain output without colour (NO_COLOR is honoured too)")

	root.AddGroup(&cobra.Group{ID: "steps", Title: "Workshop steps:"},
		&cobra.Group{ID: "tools", Title: "Tools:"})
	for _, c := range commands(g) {
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("tools")
	root.SetCompletionCommandGroupID("tools")
	return root
}

// commands lists every subcommand; each file of this package adds its own.
var commandFactories []func(g *globals) *cobra.Command

// commands builds every subcommand: the steps in their order, then the
// tools by name, as help lists them.
func commands(g *globals) []*cobra.Command {
	out := make([]*cobra.Command, 0, len(commandFactories))
	for _, f := range commandFactories {
		out = append(out, f(g))
	}
	rank := func(c *cobra.Command) int {
		if s, ok := steps.ByName(c.Name()); ok {
			return s.N
		}
		return 100
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i].Name() < out[j].Name()
	})
	return out
}

func addCommand(f func(g *globals) *cobra.Command) { commandFactories = append(commandFactories, f) }

// stepCommand gives a step's command its number, its group and --explain.
func stepCommand(g *globals, n int, c *cobra.Command) *cobra.Command {
	s, ok := steps.ByNumber(n)
	if !ok {
		panic(fmt.Sprintf("step %d is not registered", n))
	}
	c.GroupID = "steps"
	c.Short = fmt.Sprintf("Step %d: %s", n, s.Title)
	var explain bool
	c.Flags().BoolVar(&explain, "explain", false, "explain what this step does and why, without touching the system")
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if explain {
			steps.WriteExplain(g.io, s)
			return nil
		}
		return run(cmd, args)
	}
	return c
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return ui.Usagef("%s takes no arguments, got %q (see '%s --help')", cmd.CommandPath(), strings.Join(args, " "), cmd.CommandPath())
	}
	return nil
}

func init() {
	addCommand(func(g *globals) *cobra.Command {
		c := &cobra.Command{
			Use:     "step N [args]",
			Short:   "Run step N, the same as its named command",
			GroupID: "tools",
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				n, err := strconv.Atoi(args[0])
				s, ok := steps.ByNumber(n)
				if err != nil || !ok {
					return ui.Usagef("step %q: not a step number; steps are %s (see 'underhood steps')", args[0], steps.Numbers())
				}
				sub, _, err := cmd.Root().Find([]string{s.Name})
				if err != nil || sub == cmd.Root() {
					return fmt.Errorf("step %d: command %q is missing from this build", n, s.Name)
				}
				if err := sub.ParseFlags(args[1:]); err != nil {
					return ui.Usagef("%s: %v (see '%s --help')", sub.CommandPath(), err, sub.CommandPath())
				}
				// A --workdir or --no-color after N: resolve the globals again.
				if err := cmd.Root().PersistentPreRunE(sub, nil); err != nil {
					return err
				}
				if sub.Args != nil {
					if err := sub.Args(sub, sub.Flags().Args()); err != nil {
						return err
					}
				}
				sub.SetContext(cmd.Context())
				return sub.RunE(sub, sub.Flags().Args())
			},
		}
		// Everything after N belongs to the step's own command.
		c.Flags().SetInterspersed(false)
		return c
	})
}

// Tree is the command tree as users get it, with cobra's own help and
// completion commands, which Execute would add: the docs generator
// (cmd/underhood-docs) documents and lints against it.
func Tree() *cobra.Command {
	root := newRootCmd(&globals{})
	root.DisableAutoGenTag = true
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}
