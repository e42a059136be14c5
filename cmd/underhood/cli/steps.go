package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/steps"
)

// NewCmdSteps makes the steps command.
func NewCmdSteps(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "steps",
		Short:   "List the workshop steps and which are done",
		GroupID: "tools",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ov := steps.Where(g.workdir, time.Now())
			if asJSON {
				enc := json.NewEncoder(g.io.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(ov)
			}
			var table [][]string
			part, pointed := 0, false
			for _, r := range ov.Rows {
				if r.Part != part && r.Part > 1 {
					table = append(table, []string{"", g.io.Bold(steps.Part(r.Part).String()), "", ""})
				}
				part = r.Part
				state := g.io.Faint(r.State)
				switch {
				case r.Done:
					state = g.io.Green(r.State)
				case !pointed:
					// The first step not done is what to do next.
					state, pointed = g.io.Yellow(r.State), true
				case r.Ready:
					state = g.io.Bold(r.State)
				}
				table = append(table, []string{fmt.Sprint(r.N), r.Title, strings.TrimPrefix(r.Command, "underhood "), state})
			}
			g.io.Table([]string{"STEP", "TITLE", "COMMAND", "STATE"}, table)
			g.io.Wrapf("\nNext: %s\nRun a step as sudo underhood COMMAND; add --explain to see what it does first.\n", ov.Next)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the steps as JSON")
	return c
}
