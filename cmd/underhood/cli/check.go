package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// NewCmdCheck makes the check command.
func NewCmdCheck(g *globals, runF func(n int, opt *steps.CheckOptions) error) *cobra.Command {
	var opt steps.CheckOptions
	c := &cobra.Command{
		Use:   "check N [--rootfs DIR] [--json]",
		Short: "Check that step N left what it should, with a hint for each missing piece",
		Long:  checkLong(),
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
			if runF != nil {
				return runF(n, &opt)
			}
			// Taller than the terminal (a check of a half-done step with
			// its hints), it goes through the pager, as doctor does.
			var err error
			g.io.Page(func(o *ui.IO) { err = steps.Check(o, g.workdir, n, opt) })
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&opt.Rootfs, "rootfs", "", "check this root filesystem, made by hand (e.g. ~/container), instead of underhood's")
	f.StringVar(&opt.Busybox, "busybox", "", "check this BusyBox, downloaded by hand (e.g. ~/Downloads/busybox), instead of underhood's")
	f.BoolVar(&opt.JSON, "json", false, "print the checks as JSON")
	return c
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

// checkLong is check's help: what it looks at for every step.
func checkLong() string {
	var b strings.Builder
	b.WriteString(`check looks at the state step N should leave and says, for each piece,
whether it is there, and if not what is missing and the command that makes
it. It is for doing a step by hand with the article's shell commands, and for
instructors who want to see who is stuck. It exits 0 only when every check
passes, 1 otherwise.

`)
	for _, s := range steps.All() {
		if s.Check.Run != nil {
			b.WriteString(hang(fmt.Sprintf("  %-2d ", s.N), s.Check.Looks, 78))
		}
	}
	dl := steps.All()[0]
	fmt.Fprintf(&b, `
Without --rootfs it looks at underhood's own work directory; give --rootfs
for the tree you made by hand (~/container in the article), and --busybox for
the BusyBox you downloaded by hand (%s). Checks that try things for real
need root; they leave nothing behind.`, dl.Label())
	return b.String()
}

// hang folds text at width, every line after the first indented as far as
// the first line's prefix.
func hang(prefix, text string, width int) string {
	var b strings.Builder
	line := prefix
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > width && len(line) > len(prefix) {
			b.WriteString(line + "\n")
			line = strings.Repeat(" ", len(prefix))
		} else if len(line) > len(prefix) {
			line += " "
		}
		line += w
	}
	return b.String() + line + "\n"
}
