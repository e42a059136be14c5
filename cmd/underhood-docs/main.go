// Command underhood-docs keeps the workshop guide honest: it regenerates
// the command reference in docs/cli (cobra/doc), fills in the outputs the
// pages show by running their commands in a fresh lab (root), and checks
// that every underhood command the guide shows exists and parses. It is a
// program of its own so that the binary learners run, and re-execute for
// every container, carries none of it. scripts/docs.sh and 'make docs'
// drive it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra/doc"

	"github.com/underhood/underhood/cmd/underhood/cli"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/guide"
)

func main() {
	opts := guide.Options{Command: lintArgs, Reference: genCLI}
	var lint string
	fs := flag.NewFlagSet("underhood-docs", flag.ContinueOnError)
	fs.StringVar(&opts.CLI, "cli", "", "write the command reference (one Markdown page per command) to `DIR`")
	fs.StringVar(&opts.Pages, "pages", "", "run the commands marked in `DIR`/*.md and fill in their output (root)")
	fs.StringVar(&lint, "lint", "", "check that every underhood command shown in these Markdown `FILES` (comma-separated) exists and parses")
	fs.StringVar(&opts.Binary, "underhood", "", "the underhood binary whose commands the pages run (default: the one next to this program)")
	fs.BoolVar(&opts.Check, "check", false, "change nothing: say what is stale and exit 1 if anything is")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if lint != "" {
		opts.Lint = strings.Split(lint, ",")
	}
	o := ui.System(false)
	if opts.CLI == "" && opts.Pages == "" && len(opts.Lint) == 0 {
		fmt.Fprintln(o.Err, "underhood-docs: give -cli DIR, -pages DIR or -lint FILES")
		os.Exit(2)
	}
	if opts.Pages != "" && opts.Binary == "" {
		self, err := os.Executable()
		if err == nil {
			opts.Binary = strings.TrimSuffix(self, "-docs")
		}
	}
	if err := guide.Run(o, opts); err != nil {
		if msg := ui.Message(err); msg != "" {
			fmt.Fprintln(o.Err, "underhood-docs:", msg)
		}
		os.Exit(ui.ExitCode(err))
	}
}

// genCLI writes the command reference to dir: one page per command.
func genCLI(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.GenMarkdownTree(cli.Tree(), dir)
}

// lintArgs checks the arguments of an underhood command line the guide
// shows (guide.Args) against the command tree, without running it: a
// command that exists, with flags it has and arguments it takes. A command
// the text only mentions has only to exist. Every check has a tree of its
// own, as parsing flags sets them.
func lintArgs(args []string, mention bool) error {
	root := cli.Tree()
	if mention && len(args) > 0 {
		if cmd, rest, err := root.Find(args); err == nil && len(rest) == 0 && cmd != root {
			return nil
		}
	}
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd.DisableFlagParsing {
		return nil
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	flags := cmd.Flags()
	if cmd.Args != nil {
		if err := cmd.Args(cmd, flags.Args()); err != nil {
			return err
		}
	}
	if (cmd == root || !cmd.Runnable()) && len(flags.Args()) > 0 {
		return fmt.Errorf("unknown command %q for %q", flags.Args()[0], cmd.CommandPath())
	}
	return nil
}
