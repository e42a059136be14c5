// Package guide keeps the workshop guide honest. It fills in the outputs a
// page shows by running the page's commands in a fresh lab (Outputs),
// checks that every underhood command a page shows exists and parses
// (Lint), and keeps the generated command reference up to date
// (Reference). What needs the program's command tree, the reference's
// pages and the check of a command line against the tree, comes from the
// caller: the tree is built in package main.
package guide

import (
	"errors"
	"os"
	"path/filepath"
	"sort"

	"github.com/underhood/underhood/lab/ui"
)

// Options say what Run regenerates, or with Check only compares.
type Options struct {
	// Lint lists Markdown files whose underhood commands are checked,
	// without running them, with Command.
	Lint    []string
	Command CheckFunc
	// CLI is the directory of the command reference, whose pages
	// Reference writes into the directory it is given.
	CLI       string
	Reference func(dir string) error
	// Pages is the directory of the guide's pages whose outputs are made
	// by running their commands (as root) with Binary as underhood; an
	// empty Binary means this program.
	Pages  string
	Binary string
	// Check changes nothing: Run says what is stale and fails if anything is.
	Check bool
}

// Run lints, then regenerates the reference, then the pages' outputs, as
// opts say. It says on o what is stale and then returns an error with exit
// code 1.
func Run(o *ui.IO, opts Options) error {
	var stale []string
	for _, f := range opts.Lint {
		s, err := Lint(f, opts.Command)
		if err != nil {
			return err
		}
		stale = append(stale, s...)
	}
	if opts.CLI != "" {
		s, err := Reference(opts.CLI, opts.Check, opts.Reference)
		if err != nil {
			return err
		}
		stale = append(stale, s...)
	}
	if opts.Pages != "" {
		binary := opts.Binary
		if binary == "" {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			binary = self
		}
		s, err := Outputs(o, binary, opts.Pages, opts.Check)
		if err != nil {
			return err
		}
		stale = append(stale, s...)
	}
	if len(stale) > 0 {
		for _, s := range stale {
			o.Say(s)
		}
		return &ui.ExitError{Code: 1, Err: errors.New("the docs are stale: run 'sudo make docs' and commit the result")}
	}
	return nil
}

// Pages lists the guide's pages in dir in reading order: the numbered
// steps, then the rest.
func Pages(dir string) ([]string, error) {
	pages, err := filepath.Glob(filepath.Join(dir, "*.md"))
	sort.Strings(pages)
	return pages, err
}
