package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/doctor"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// NewCmdDoctor makes the doctor command.
func NewCmdDoctor(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can run the workshop",
		Long: `doctor checks what the workshop needs: where it runs (WSL, a container,
which VM) and on which architecture, root, the kernel, namespaces, the
cgroup layout (v1, v2 or hybrid) and memory controller, swap, mount
propagation, BusyBox and user-namespace restrictions. As root it really
creates and removes a probe cgroup. Every row that is not OK says what to do.
It exits 1 when a check fails.`,
		GroupID: "tools",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := doctor.Run(doctor.Options{
				Workdir: g.workdir,
				Probe:   true,
				Euid:    os.Geteuid(),
				Words:   steps.DoctorWords(g.workdir),
			})
			// About 45 lines: paged on a terminal, as --explain is.
			var err error
			g.io.Page(func(o *ui.IO) { err = r.Print(o, asJSON) })
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the checks and the cgroup layout as JSON")
	return c
}
