package container

import (
	"time"

	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/state"
)

// Status is one lab container as ps shows it.
type Status struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	HostPID int       `json:"host_pid"`
	State   string    `json:"state"` // running, exited, stale
	Memory  int64     `json:"memory_limit"`
	Created time.Time `json:"created"`
	Cgroup  string    `json:"cgroup,omitempty"`
	Dir     string    `json:"dir"`
}

// States of a run.
const (
	Running  = "running"  // the payload is alive
	Exited   = "exited"   // ended, its directory kept (--keep)
	Stale    = "stale"    // its underhood died: 'underhood cleanup' removes it
	Starting = "starting" // the payload is not started yet
	// NotOurs is a directory with no journal of underhood's (none, or a
	// FIFO, a directory or a file that does not begin as underhood's do):
	// cleanup leaves it alone.
	NotOurs = "not underhood's"
)

// List reads every run's journal.
func List(w state.Workdir) ([]Status, error) {
	names, err := w.ListRuns()
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(names))
	for _, n := range names {
		dir := w.Run(n)
		es, err := state.ReadJournal(dir)
		i := state.Summarize(n, dir, es)
		s := Status{Name: n, Kind: i.Kind, HostPID: i.Payload.PID, Memory: i.Memory, Created: i.Created, Dir: dir}
		if err != nil || !i.Ours() {
			s.State = NotOurs
			out = append(out, s)
			continue
		}
		if len(i.Cgroups) > 0 {
			s.Cgroup = i.Cgroups[0]
		}
		ownerAlive := state.Live(dir) || proc.Host.Same(i.Owner.PID, i.Owner.Start)
		switch {
		case i.Payload.PID > 0 && proc.Host.Same(i.Payload.PID, i.Payload.Start):
			s.State = Running
			if !ownerAlive {
				s.State = Stale
			}
		case i.Exit != nil && !ownerAlive:
			s.State = Exited
		case ownerAlive:
			s.State = Starting
		default:
			s.State = Stale
		}
		out = append(out, s)
	}
	return out, nil
}
