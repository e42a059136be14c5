package steps

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// The registry. Every step is one file of this package, named NN_name.go,
// that registers itself from an init function; the steps come in the order
// of those file names, and every number a user sees ("step 3", "Next: …
// (step 4)", "steps 1–7") is a position in that order, never written down.
// Adding a step is adding its file (numbered between its neighbours), its
// docs page and its tests.

// Part groups the steps: the article's, then what real runtimes add.
type Part int

const (
	Article Part = 1 // Part 1: the article, step by step
	Beyond  Part = 2 // Part 2: beyond the article
)

func (p Part) String() string {
	if p == Beyond {
		return "Part 2: beyond the article"
	}
	return "Part 1: the article"
}

// Kind is the shape of a step's command.
type Kind int

const (
	Container Kind = iota // runs a payload: options are ContainerOptions
	Setup                 // prepares the lab (download, rootfs): a command of its own
)

// Option names a flag that a container step takes.
type Option uint

const (
	WithMemory    Option = 1 << iota // --memory, --cgroup-parent
	WithName                         // --name, --keep
	WithLimits                       // --pids, --cpus
	WithNet                          // --net host|none|veth, --rootless
	WithImage                        // --image
	WithIsolation                    // --pivot-root, --drop-privileges, --isolation article|full
	WithPauses                       // --no-pause: the step waits for Enter between its parts on a terminal
)

// Step is one stage of the workshop, all of it in one place.
type Step struct {
	N     int    // the position in the registry, from 1
	Name  string // the subcommand: "download", "rootfs", …
	Title string
	Part  Part
	Kind  Kind
	// Long is the command's help text, and Options the flags a container
	// step takes beyond the payload.
	Long    string
	Options Option
	Explain Explanation
	// Page is the step's page of the guide in docs/; Code names the
	// functions that do the work, "file.go Func", for "read the code".
	Page string
	Code []string
	// Done reports whether the step's result is in place now, with a short
	// detail ("1.2 MiB, sha256 ok", "missing"). For a step that leaves
	// nothing behind (Ephemeral), it says whether the step can run.
	Done      func(w state.Workdir) (bool, string)
	Ephemeral bool
	// Run runs a container step with the user's options.
	Run func(o *ui.IO, w state.Workdir, opt ContainerOptions) error
	// Check is what 'underhood check N' looks at for this step.
	Check StepCheck
	// Tour is the step's stop in the instructor's tour.
	Tour TourStop
	file string // the file that registered it: its place in the order
}

// StepCheck is what checking a step looks at, and what comes next by hand
// (%[1]s is the root filesystem made by hand).
type StepCheck struct {
	Run    func(check.Env) []check.Item
	Looks  string                 // what it looks at, for check's help
	Target func(check.Env) string // what is looked at; nil = the root filesystem
	ByHand string
	// Machine: the check judges processes and cgroups of the machine, not
	// a root filesystem, so the way to it has no --rootfs.
	Machine bool
}

var registry []*Step

func register(s *Step) {
	_, file, _, _ := runtime.Caller(1)
	s.file = filepath.Base(file)
	registry = append(registry, s)
	slices.SortStableFunc(registry, func(a, b *Step) int { return strings.Compare(a.file, b.file) })
	for i, r := range registry {
		r.N = i + 1
	}
}

// All returns the steps in order.
func All() []*Step { return slices.Clone(registry) }

// ByNumber finds step n.
func ByNumber(n int) (*Step, bool) {
	if n < 1 || n > len(registry) {
		return nil, false
	}
	return registry[n-1], true
}

// ByName finds the step run by the named subcommand.
func ByName(name string) (*Step, bool) {
	i := slices.IndexFunc(registry, func(s *Step) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return registry[i], true
}

// Numbers lists the step numbers, for error messages: "1–7".
func Numbers() string {
	if len(registry) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d–%d", 1, len(registry))
}

// InPart lists the steps of part p.
func InPart(p Part) []*Step {
	var out []*Step
	for _, s := range registry {
		if s.Part == p {
			out = append(out, s)
		}
	}
	return out
}

// Command is how a user runs the step.
func (s *Step) Command() string { return "underhood " + s.Name }

// Label is "step N", as every message names a step.
func (s *Step) Label() string { return fmt.Sprintf("step %d", s.N) }

// Next is the step after s, or nil after the last one.
func (s *Step) Next() *Step {
	if n, ok := ByNumber(s.N + 1); ok {
		return n
	}
	return nil
}

// Doc is the path of the step's page of the guide: docs/03-chroot.md.
func (s *Step) Doc() string { return "docs/" + s.Page }

// AfterLast is what to do once every step is done.
const AfterLast = "that was the last step. Go back over any of them with 'underhood check N' or the tour (sudo underhood tour); the guide's map is docs/README.md"

// NextHint is what a step says when it is done: the next step's command,
// or what to do once the last one is done.
func (s *Step) NextHint() string {
	if n := s.Next(); n != nil {
		if s.Name == "run" {
			// The guide's page 8 is the inspector, between steps 7 and 8.
			return fmt.Sprintf("look at a container from the host with sudo underhood inspect (docs/08-inspect.md), then sudo %s (%s)", n.Command(), n.Label())
		}
		return fmt.Sprintf("sudo %s (%s)", n.Command(), n.Label())
	}
	return AfterLast
}

// Of finds the step run by the named command; it panics on a name that
// is not registered, which is a mistake in this package.
func of(name string) *Step {
	s, ok := ByName(name)
	if !ok {
		panic("steps: no step named " + name)
	}
	return s
}
