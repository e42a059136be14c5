package steps

import (
	"fmt"
	"time"

	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// Row is one step as 'underhood steps' shows it.
type Row struct {
	N       int       `json:"n"`
	Part    int       `json:"part"`
	Name    string    `json:"name"`
	Title   string    `json:"title"`
	Command string    `json:"command"`
	Done    bool      `json:"done"` // its result is in place, or it ran to its end
	Leaves  bool      `json:"leaves_state"`
	Ready   bool      `json:"ready"` // it can run now
	LastRun time.Time `json:"last_run,omitzero"`
	State   string    `json:"state"`  // a word or two: done, ready, ran 3 min ago, needs step 2
	Detail  string    `json:"detail"` // what was found, in full
}

// Overview is where the learner is: every step, and what to do next.
type Overview struct {
	Rows    []Row  `json:"steps"`
	Next    string `json:"next"`
	AllDone bool   `json:"all_done"`
}

// Where says, for the work directory w, which steps are done (those that
// leave a result: whether it is there; the others: whether they ran to
// their end, as recorded in w's progress) and what comes next.
func Where(w state.Workdir, now time.Time) Overview {
	progress, _ := w.ReadProgress()
	var ov Overview
	var next *Step
	for _, s := range All() {
		ok, detail := s.Done(w)
		r := Row{N: s.N, Part: int(s.Part), Name: s.Name, Title: s.Title, Command: s.Command(),
			Leaves: !s.Ephemeral, Ready: ok, Detail: detail}
		if s.Ephemeral {
			r.LastRun = progress[s.Name]
			r.Done = ok && !r.LastRun.IsZero()
			r.State = detail
			if r.Done {
				r.State = "ran " + ago(now.Sub(r.LastRun))
			}
		} else {
			r.Done = ok
			r.State = detail
			if ok {
				r.State = "done"
			}
		}
		if !r.Done && next == nil {
			next = s
		}
		ov.Rows = append(ov.Rows, r)
	}
	all := All()
	switch {
	case len(all) == 0:
	case next != nil:
		ov.Next = fmt.Sprintf("sudo %s (%s)", next.Command(), next.Label())
	default:
		ov.Next = fmt.Sprintf("all %d steps are done: %s", len(all), AfterLast)
		ov.AllDone = true
	}
	return ov
}

func ago(d time.Duration) string { return ui.Ago(d) }
