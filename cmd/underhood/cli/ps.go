package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
)

// NewCmdPs makes the ps command.
func NewCmdPs(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "ps",
		Short:   "List the lab's containers",
		GroupID: "tools",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := container.List(g.workdir)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.io.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				if os.Geteuid() != 0 {
					// A user without root runs them rootless, no sudo.
					g.io.Say(strings.Replace(g.io.Spell("No lab containers. Start one with 'sudo underhood run --rootless'."), "'sudo ", "'", 1))
					return nil
				}
				g.io.Say("No lab containers. Start one with 'sudo underhood run'.")
				return nil
			}
			var rows [][]string
			stale, notOurs := false, false
			for _, s := range list {
				pid, mem := "-", "-"
				if s.HostPID > 0 {
					pid = fmt.Sprint(s.HostPID)
				}
				if s.Memory > 0 {
					mem = cgroup.FormatSize(s.Memory)
				}
				state := s.State
				switch s.State {
				case container.Running:
					state = g.io.Green(state)
				case container.Stale:
					state = g.io.Yellow(state)
					stale = true
				case container.NotOurs:
					notOurs = true
				}
				rows = append(rows, []string{s.Name, s.Kind, pid, state, mem, age(s.Created)})
			}
			g.io.Table([]string{"NAME", "KIND", "HOST PID", "STATE", "MEM LIMIT", "AGE"}, rows)
			if stale {
				g.io.Printf("\nStale runs were cut short (underhood was killed): 'sudo underhood cleanup --all' removes them.\n")
			}
			if notOurs {
				g.io.Printf("\nA directory marked not underhood's has no journal underhood wrote: cleanup leaves it alone.\n")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the containers as JSON")
	return c
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
