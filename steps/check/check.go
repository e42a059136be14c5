// Package check looks at what building a container by hand leaves on a
// machine: a BusyBox, a root filesystem, proc mounted in it, namespaces, a
// memory cgroup, and afterwards nothing at all. It is for attendees who do
// a stage with the article's shell commands and want to know whether it
// worked, and for instructors who want to see who is stuck.
//
// Each function checks one stage and returns one Item per piece, and every
// piece that is missing says what is missing and which command makes it.
// Every path is a field of Env, and whatever needs root or a kernel (running
// BusyBox, chroot, namespaces, a probe cgroup) goes through Env.Try, so the
// tests run it on fixture trees.
package check

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// Skip is a piece that was not looked at because one it depends on failed.
const Skip ui.Level = "SKIP"

// Item is one row of a report. Hint says what to do; on an OK row it is
// advice for later ("unmount it when you are done"), or empty.
type Item struct {
	Check  string   `json:"check"`
	Status ui.Level `json:"status"`
	Detail string   `json:"detail"`
	Hint   string   `json:"hint,omitempty"`
}

// Env says where to look. System fills it in for this machine.
type Env struct {
	Workdir state.Workdir // underhood's work directory: its runs are leftovers
	Busybox string        // the BusyBox that downloading leaves
	Rootfs  string        // the root filesystem
	Image   string        // the OCI image layout made of it
	// ByHand means the attendee made Busybox or Rootfs with the article's
	// commands: hints give those commands instead of underhood's, and the
	// memory check wants the hand-made cgroup.
	ByHand bool
	// RootfsGiven: Rootfs is the attendee's own tree (--rootfs), not the lab's.
	RootfsGiven  bool
	BusyboxGiven bool // Busybox is the attendee's own (--busybox)

	ProcRoot   string // "/proc": mountinfo, swaps, namespaces, processes
	CgroupRoot string // "/sys/fs/cgroup"
	ScriptDir  string // "/tmp/container": where the article's script builds its containers
	Cgroup     string // the article's hand-made cgroup: "busybox"
	Limit      int64  // the article's limit: 7340032
	Euid       int

	FSType   func(path string) (int64, error)  // statfs f_type; the cgroup layout
	LookPath func(file string) (string, error) // finds unshare(1)
	Try      func(Probe) (string, error)       // runs a probe; Run is the real one
	// Links lists the interfaces of process pid's network namespace, or
	// of the checker's own with pid 0.
	Links func(pid int) ([]netns.Link, error)
	// HostBusybox is the BusyBox a probe may run on the host, outside the
	// root: never the root's own bin/busybox, which a payload can replace.
	HostBusybox func() (string, error)
}

// System is Env for this machine and the work directory w: its BusyBox and
// root filesystem, the real /proc and /sys/fs/cgroup, and real probes.
func System(w state.Workdir) Env {
	return Env{
		Workdir:    w,
		Busybox:    w.Busybox(),
		Rootfs:     w.Rootfs(),
		Image:      w.Image(),
		ProcRoot:   "/proc",
		CgroupRoot: "/sys/fs/cgroup",
		ScriptDir:  "/tmp/container",
		Cgroup:     "busybox",
		Limit:      cgroup.DefaultLimit,
		Euid:       os.Geteuid(),
		FSType:     cgroup.StatfsType,
		LookPath:   exec.LookPath,
		Try:        Run,
		Links:      Links,
		HostBusybox: func() (string, error) {
			return busybox.TrustedHostCopy(w.Busybox(), w.Verified())
		},
	}
}

// fix picks the hint for the article's way or for underhood's.
func (e Env) fix(byHand, lab string) string {
	if e.ByHand {
		return byHand
	}
	return lab
}

// sudo prefixes a command with sudo when the file it touches is underhood's
// (root's), not the attendee's own.
func (e Env) sudo(cmd string) string {
	if e.ByHand {
		return cmd
	}
	return "sudo " + cmd
}

func (e Env) proc(rel ...string) string {
	return filepath.Join(append([]string{e.ProcRoot}, rel...)...)
}

const needRoot = "run the check with sudo: chroot, namespaces and cgroups are for root only"

// Report is the outcome of checking one stage. The JSON field names are
// stable: instructors collect them.
type Report struct {
	Step     int    `json:"step"`
	Title    string `json:"title"`
	Target   string `json:"target"` // what was looked at
	Items    []Item `json:"checks"`
	Failures int    `json:"failures"`
	Skipped  int    `json:"skipped"` // not looked at: they wait on a failure
	Warnings int    `json:"warnings"`
	Passed   bool   `json:"passed"`
	// Next is what to do now: the next step once this one passes, or
	// the same check again after the hints while it does not.
	Next string `json:"next,omitempty"`
	// Retry is the command that runs this check again.
	Retry string `json:"retry,omitempty"`
}

// NewReport counts the items' outcomes.
func NewReport(step int, title, target string, items []Item, next, retry string) Report {
	r := Report{Step: step, Title: title, Target: target, Items: items, Next: next, Retry: retry}
	for _, it := range items {
		switch it.Status {
		case ui.Fail:
			r.Failures++
		case Skip:
			r.Skipped++
		case ui.Warn:
			r.Warnings++
		}
	}
	r.Passed = r.Failures == 0 && r.Skipped == 0
	if !r.Passed && retry != "" {
		r.Next = "do what the hints say, then: " + retry
	}
	return r
}

// Print writes the report as a table, what to do, and a one-line verdict,
// or as JSON. It returns an ExitError with code 1 (and no message) unless
// every check passed.
func (r Report) Print(o *ui.IO, asJSON bool) error {
	if asJSON {
		if err := writeJSON(o, r); err != nil {
			return err
		}
	} else {
		o.Hanging(o.Bold(fmt.Sprintf("Step %d: %s", r.Step, r.Title))+" — checking "+r.Target, 2)
		o.Say()
		rows := make([][]string, 0, len(r.Items))
		for _, it := range r.Items {
			st := o.Status(it.Status)
			if it.Status == Skip {
				st = o.Faint(string(Skip))
			}
			rows = append(rows, []string{it.Check, st, it.Detail})
		}
		o.Table([]string{"CHECK", "STATUS", "DETAIL"}, rows)
		var todo []string
		for _, it := range r.Items {
			if it.Hint != "" {
				todo = append(todo, fmt.Sprintf("  %s: %s", it.Check, it.Hint))
			}
		}
		if len(todo) > 0 {
			o.Say()
			// A step that passed has nothing left to do: its hints are
			// for afterwards (the same by hand, what to remove).
			head := "What to do:"
			if r.Passed && r.Warnings == 0 {
				head = "Notes:"
			}
			o.Say(o.Bold(head))
			for _, l := range todo {
				o.Hanging(l, 4) // wrapped at spaces on a terminal, commands whole
			}
		}
		o.Say()
		o.Hanging(r.verdict(), 0)
	}
	if !r.Passed {
		return &ui.ExitError{Code: 1}
	}
	return nil
}

func (r Report) verdict() string {
	n := len(r.Items)
	switch {
	case !r.Passed:
		wait := ""
		if r.Skipped > 0 {
			wait = fmt.Sprintf(" (and %d %s on %s)", r.Skipped, plural(r.Skipped, "waits", "wait"), plural(r.Failures, "it", "them"))
		}
		what := fmt.Sprintf("%d of %d checks %s%s", r.Failures, n, plural(r.Failures, "fails", "fail"), wait)
		if n == 1 {
			what = "The check fails"
		}
		return fmt.Sprintf("%s: step %d is not done yet. Do what the hints say, then run the same check again.", what, r.Step)
	case r.Warnings > 0:
		// As below: steps 3 to 6 leave nothing, so passing means they work.
		state := "is done"
		if r.Step >= 3 && r.Step <= 6 {
			state = "works on this machine"
		}
		s := fmt.Sprintf("Step %d %s, with %s to look at (see What to do).", r.Step, state, plural(r.Warnings, "1 warning", fmt.Sprintf("%d warnings", r.Warnings)))
		if r.Next != "" {
			s += " Next: " + r.Next
		}
		return s
	}
	// Steps 1 and 2 leave a result; 3 to 6 leave nothing, so passing means
	// the step works here; 7's checks are that nothing is left.
	done := fmt.Sprintf("step %d is done.", r.Step)
	switch {
	case r.Step == 7:
		done = "nothing is left behind."
	case r.Step >= 3:
		done = fmt.Sprintf("step %d works on this machine.", r.Step)
	}
	s := fmt.Sprintf("All %d checks pass: %s", n, done)
	if n == 1 {
		s = "The check passes: " + done
	}
	if r.Next != "" {
		s += " Next: " + r.Next
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// fileSize says how big a file is, for details.
func fileSize(fi os.FileInfo) string { return cgroup.FormatSize(fi.Size()) }

func writeJSON(o *ui.IO, v any) error {
	enc := json.NewEncoder(o.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ranItem says whether the step called step ran to its end in this work
// directory, as its progress records: a step that leaves nothing behind
// has no other trace, and "nothing is left" alone would pass before the
// step was ever done. Not recorded fails, with the way to do it: the step
// is not done (walkthrough 13: "Step 7 is done" before any run).
func ranItem(e Env, name, step, do string) Item {
	p, err := e.Workdir.ReadProgress()
	if t, ok := p[step]; ok && err == nil {
		return Item{name, ui.OK, "sudo underhood " + step + " ran to its end " + when(t), ""}
	}
	return Item{name, ui.Fail, "none has run to its end in " + e.Workdir.Root + " yet", do}
}

// stepRan is an OK item, named name, when underhood's own step (its
// command name) ran to its end in this work directory: for the checks of
// what is made by hand while it runs, with nothing of it left to see, it
// counts, as check 9 counts underhood limits. shown says what the step
// showed; byHand is the way to do it by hand, as the hint.
func stepRan(e Env, name, step, shown, byHand string) (Item, bool) {
	p, _ := e.Workdir.ReadProgress()
	t, ok := p[step]
	if !ok {
		return Item{}, false
	}
	return Item{name, ui.OK, "none made by hand is running; sudo underhood " + step + " ran to its end " + when(t) + ": " + shown,
		"to judge your own: " + byHand}, true
}

// when is how long ago t was.
func when(t time.Time) string { return ui.Ago(time.Since(t)) }
