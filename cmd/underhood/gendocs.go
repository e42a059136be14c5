package main

// gen-docs is a hidden command, not a program of its own in scripts/: the
// command tree is built by this package (package main, which nothing can
// import), so the parts of lab/guide that need the tree (the reference's
// pages, and the check of a command line the guide shows) come from here,
// to see exactly the commands, flags and help texts that users get.
// docs_test.go calls the same functions in-process; scripts/docs.sh and
// 'make docs' drive it.

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/underhood/underhood/lab/guide"
	"github.com/underhood/underhood/lab/ui"
)

func init() {
	addCommand(func(g *globals) *cobra.Command {
		opts := guide.Options{Command: lintArgs, Reference: genCLI}
		c := &cobra.Command{
			Use:    "gen-docs [--cli DIR] [--pages DIR] [--check]",
			Short:  "Regenerate the guide's command reference and outputs (for developers)",
			Hidden: true,
			Args:   noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if opts.CLI == "" && opts.Pages == "" && len(opts.Lint) == 0 {
					return ui.Usagef("gen-docs: give --cli DIR, --pages DIR or --lint FILE")
				}
				return guide.Run(g.io, opts)
			},
		}
		c.Flags().StringVar(&opts.CLI, "cli", "", "write the command reference (one Markdown page per command) to DIR")
		c.Flags().StringVar(&opts.Pages, "pages", "", "run the commands marked in DIR/*.md and fill in their output (root)")
		c.Flags().StringSliceVar(&opts.Lint, "lint", nil, "check that every underhood command shown in these Markdown files exists and parses")
		c.Flags().BoolVar(&opts.Check, "check", false, "change nothing: say what is stale and exit 1 if anything is")
		return c
	})
}

// docsTree is the command tree as users get it, with cobra's own help and
// completion commands, which Execute would add.
func docsTree() *cobra.Command {
	root := newRootCmd(&globals{})
	root.DisableAutoGenTag = true
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// genCLI writes the command reference to dir: one page per command.
func genCLI(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.GenMarkdownTree(docsTree(), dir)
}

// lintArgs checks the arguments of an underhood command line the guide
// shows (guide.Args) against the command tree, without running it: a
// command that exists, with flags it has and arguments it takes. A command
// the text only mentions has only to exist. Every check has a tree of its
// own, as parsing flags sets them.
func lintArgs(args []string, mention bool) error {
	root := docsTree()
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
	if !cmd.Runnable() && len(flags.Args()) > 0 {
		return fmt.Errorf("unknown command %q for %q", flags.Args()[0], cmd.CommandPath())
	}
	return nil
}
