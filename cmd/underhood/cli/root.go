package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
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
	ctx, stop := signalContext()
	defer stop()
	// A reader that went away (underhood ... | head) makes a write fail
	// with EPIPE instead of killing underhood by SIGPIPE in the middle of
	// a run, before its cleanup. Caught, not ignored: a payload starts
	// with SIGPIPE at its default again, as exec resets caught signals.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	g := &globals{}
	root := newRootCmd(g)
	root.SetArgs(stepArgs(args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if g.io == nil {
		g.io = ui.System(true)
	}
	var notOurs *state.NotOursError
	if errors.As(err, &notOurs) && ui.ExitCode(err) == 1 {
		err = ui.Usage(err) // a --workdir that is not underhood's: bad input, nothing made
	}
	if msg := ui.Message(err); msg != "" {
		g.io.Note("%s %s", g.io.Red("underhood:"), msg) // wrapped on a terminal
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		var sg *Signaled
		if errors.As(context.Cause(ctx), &sg) {
			return 128 + int(sg.Sig)
		}
		return 130
	}
	return ui.ExitCode(err)
}

// Signaled is why the program's context was cancelled: the signal that
// came (SIGINT, SIGTERM or SIGHUP). Whatever stops on the context can say
// which one, and exit 128 + its number (lab/container reads it through its
// Signal method).
type Signaled struct{ Sig syscall.Signal }

func (s *Signaled) Error() string { return "got " + s.Sig.String() }

// Signal is the signal that came.
func (s *Signaled) Signal() os.Signal { return s.Sig }

// signalContext is signal.NotifyContext that keeps the signal as the
// context's cause: SIGHUP must not be reported as an interrupt.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sg := <-ch:
			cancel(&Signaled{Sig: sg.(syscall.Signal)})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
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
		// A word that is no command reaches the root, which says so.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return ui.Usagef("unknown command %q for \"underhood\" (see 'underhood --help')", args[0])
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.io = ui.System(g.noColor)
			if cmd.Flags().Changed("workdir") && g.workdirFlag == "" {
				return ui.Usagef("--workdir \"\": give a directory (default $UNDERHOOD_HOME or %s)", state.DefaultRoot)
			}
			wd, err := state.Resolve(g.workdirFlag)
			if err != nil {
				return ui.Usage(err)
			}
			g.workdir = wd
			// Hints carry --workdir, as sudo drops $UNDERHOOD_HOME; but not
			// for the guide's generator, whose lab is shown as the default
			// (UNDERHOOD_PLAIN_HINTS=1), so that its pages wrap as a
			// reader's terminal does.
			if g.workdirFlag != "" || os.Getenv("UNDERHOOD_HOME") != "" && os.Getenv("UNDERHOOD_PLAIN_HINTS") != "1" {
				g.io.Invocation = "underhood --workdir " + ui.QuoteArg(wd.Root)
			}
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
	addCompletion(g, root)
	return root
}

// commands builds every subcommand, as help lists them: the steps in
// their order, then the tools by name.
func commands(g *globals) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range steps.All() {
		out = append(out, newCmdStep(g, s))
	}
	return append(out,
		NewCmdCheck(g, nil),
		NewCmdCleanup(g),
		NewCmdDoctor(g),
		NewCmdEscape(g),
		NewCmdInspect(g),
		NewCmdPs(g),
		NewCmdStepN(g),
		NewCmdSteps(g),
		NewCmdTour(g, nil),
	)
}

// newCmdStep makes a step's command: the container steps share one, the
// steps that set the lab up have their own.
func newCmdStep(g *globals, s *steps.Step) *cobra.Command {
	switch {
	case s.Kind == steps.Container:
		return NewCmdContainer(g, s, nil)
	case s.Name == "download":
		return NewCmdDownload(g, s)
	case s.Name == "rootfs":
		return NewCmdRootfs(g, s)
	}
	panic("cli: no command for step " + s.Name)
}

// stepCommand gives a step's command its number, its group and --explain.
func stepCommand(g *globals, s *steps.Step, c *cobra.Command) *cobra.Command {
	c.GroupID = "steps"
	c.Short = fmt.Sprintf("Step %d: %s", s.N, s.Title)
	var explain bool
	c.Flags().BoolVar(&explain, "explain", false, "explain what this step does and why, without touching the system")
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if explain {
			// 35 to 50 lines: through a pager on a terminal shorter than that.
			g.io.Page(func(o *ui.IO) { steps.WriteExplain(o, s) })
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

// NewCmdStepN is "step N": Execute rewrites "step N ARGS" into the
// step's own command line before cobra sees it (stepArgs), so this command
// only runs when N is missing or is not a step.
func NewCmdStepN(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "step N [args]",
		Short:   "Run step N, the same as its named command",
		GroupID: "tools",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return ui.Usagef("step %q: not a step number; steps are %s (see 'underhood steps')", args[0], steps.Numbers())
		},
	}
	c.Flags().SetInterspersed(false)
	return c
}

// stepArgs rewrites "step N ARGS…" into "NAME ARGS…", after any global
// flags: step N is another spelling of the step's command, nothing more.
func stepArgs(args []string) []string {
	i := 0
	for i < len(args) {
		switch a := args[i]; {
		case a == "--workdir":
			i += 2
			continue
		case strings.HasPrefix(a, "--workdir=") || a == "--no-color":
			i++
			continue
		}
		break
	}
	if i+1 >= len(args) || args[i] != "step" {
		return args
	}
	n, err := strconv.Atoi(args[i+1])
	s, ok := steps.ByNumber(n)
	if err != nil || !ok {
		return args
	}
	out := append(slices.Clone(args[:i]), s.Name)
	return append(out, args[i+2:]...)
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
