package cli

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/escape"
	"github.com/underhood/underhood/lab/ui"
)

// NewCmdEscape makes the escape command: the program a container step
// copies into its root, to try the classic way out of a chroot.
func NewCmdEscape(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "escape FILE",
		Short: "Inside a container: try the classic chroot escape, then read FILE",
		Long: `escape is meant to run inside a container (the pivot-root step copies
underhood into it as /bin/underhood). It does what a root process in a
chroot can always do: mkdir a directory, chroot into it, walk up with cd ..
past the old root, chroot to where the walk ends, and then read FILE, a path
as the host sees it (e.g. /etc/hostname).

It exits 0 when FILE was read (the escape worked), 1 when the walk ended in
the container's own root (held), and 3 when chroot itself was refused (no
CAP_SYS_CHROOT). Outside a chroot the walk ends where it began: held.`,
		Example: `  underhood pivot-root -- /bin/underhood escape /etc/hostname`,
		GroupID: "tools",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !filepath.IsAbs(args[0]) {
				return ui.Usagef("escape takes one absolute path, the host file to read (e.g. /etc/hostname), got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r := escape.Try(args[0])
			o := g.io
			for _, s := range r.Steps {
				o.Say("  " + s)
			}
			switch r.Outcome {
			case escape.Escaped:
				o.Hanging(o.Red("Escaped:")+" read "+args[0]+" outside the container's root: "+strconv.Quote(r.Found), 2)
			case escape.Held:
				why := r.Err.Error()
				if errors.Is(r.Err, fs.ErrNotExist) {
					why = "no " + args[0] + " there"
				}
				if errors.Is(r.Err, escape.ErrSameRoot) {
					o.Hanging(o.Green("Held:")+" the walk up ended at the root it began in: no chroot to leave, nothing above this root", 2)
					break
				}
				o.Hanging(o.Green("Held:")+" the walk up ended in the container's own root: "+why, 2)
			case escape.Refused:
				o.Hanging(o.Green("Refused:")+" "+r.Err.Error(), 2)
			case escape.Denied:
				why := r.Err.Error()
				if errors.Is(r.Err, fs.ErrPermission) {
					why = "permission denied" // the path is named already
				}
				o.Hanging(o.Green("Denied:")+" out of the root, but "+args[0]+" may not be read: this root is not the host's ("+why+")", 2)
			}
			if code := r.Outcome.ExitCode(); code != 0 {
				return &ui.ExitError{Code: code}
			}
			return nil
		},
	}
}
