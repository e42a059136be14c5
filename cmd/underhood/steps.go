package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/steps"
)

func init() {
	addCommand(func(g *globals) *cobra.Command {
		var asJSON bool
		c := &cobra.Command{
			Use:     "steps",
			Short:   "List the workshop steps and which are done",
			GroupID: "tools",
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				type row struct {
					N       int    `json:"n"`
					Name    string `json:"name"`
					Title   string `json:"title"`
					Command string `json:"command"`
					Done    bool   `json:"done"`
					Leaves  bool   `json:"leaves_state"`
					Detail  string `json:"detail"`
				}
				var rows []row
				for _, s := range steps.All() {
					done, detail := s.Done(g.workdir)
					rows = append(rows, row{s.N, s.Name, s.Title, s.Command(), done, !s.Ephemeral, detail})
				}
				if asJSON {
					enc := json.NewEncoder(g.io.Out)
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				}
				var table [][]string
				next := ""
				for _, r := range rows {
					mark := g.io.Status("OK")
					if !r.Leaves {
						mark = g.io.Green("ready")
					}
					if !r.Done {
						mark = g.io.Faint("-")
						if next == "" {
							next = r.Command
						}
					}
					table = append(table, []string{fmt.Sprint(r.N), r.Title, "sudo " + r.Command, mark, r.Detail})
				}
				g.io.Table([]string{"STEP", "TITLE", "COMMAND", "DONE", "STATE"}, table)
				if next != "" {
					g.io.Wrapf("\nNext: sudo %s   (add --explain to any step to see what it does first)\n", next)
				} else {
					g.io.Wrapf("\nSteps 1 and 2 are done. Next: sudo underhood chroot (step 3), then each step in turn; add --explain to see what a step does first.\n")
				}
				return nil
			},
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print the steps as JSON")
		return c
	})
}
