// Package steps holds the numbered workshop steps: what each does, the
// article's shell commands for the same stage, the system calls underhood
// makes for it, and whether its result is in place now.
package steps

import (
	"fmt"
	"strings"

	"github.com/underhood/underhood/lab/ui"
)

// Explanation is what --explain prints: it never touches the system.
type Explanation struct {
	What     string   // what the step does, one or two sentences
	Why      string   // why it matters for a container
	Shell    []string // the article's shell commands for the same stage
	Syscalls []string // what underhood does, as system calls
	Differs  string   // where underhood departs from the article, and why
	Observe  string   // what to look at once it runs
	// NotIsolated is what the step leaves shared with the host, or open
	// to a payload running as root: one short item each, the later step
	// that closes it named where there is one.
	NotIsolated []string
}

// InsidePrompt begins a line of a step's shell way that is typed in the
// container's shell, not the host's: BusyBox's prompt as root.
const InsidePrompt = "/ # "

// WriteExplain prints the step's explanation.
func WriteExplain(o *ui.IO, s *Step) {
	e := s.Explain
	o.Printf("%s\n\n", o.Bold(fmt.Sprintf("Step %d: %s  (%s)", s.N, s.Title, s.Command())))
	if len(s.Code) > 0 {
		defer o.Wrapf("Read the code: %s\n", strings.Join(s.Code, ", "))
	}
	o.Printf("%s\n%s\n\n", o.Cyan("What it does"), wrap(e.What))
	if e.Why != "" {
		o.Printf("%s\n%s\n\n", o.Cyan("Why"), wrap(e.Why))
	}
	if len(e.Shell) > 0 {
		o.Printf("%s\n", o.Cyan("The shell way (as in the article)"))
		o.Shell(2, InsidePrompt, e.Shell) // "/ # ": typed in the container's shell
		o.Printf("\n")
	}
	if len(e.Syscalls) > 0 {
		o.Printf("%s\n", o.Cyan("What underhood does (system calls)"))
		for _, l := range e.Syscalls {
			// "call   what it is for": where the line is wider than the
			// terminal, what it is for goes on under the call.
			call, what, ok := strings.Cut(l, "   ")
			if !ok || o.Width <= 0 || ui.Width("  "+l) <= o.Width {
				o.Printf("  %s\n", l)
				continue
			}
			o.Hanging("  "+call, 6)
			o.Hanging("      "+strings.TrimLeft(what, " "), 6)
		}
		o.Printf("\n")
	}
	if e.Differs != "" {
		o.Printf("%s\n%s\n\n", o.Cyan("How this differs from the article"), wrap(e.Differs))
	}
	if e.Observe != "" {
		o.Printf("%s\n%s\n\n", o.Cyan("What to look at"), wrap(e.Observe))
	}
	if len(e.NotIsolated) > 0 {
		o.Printf("%s\n", o.Cyan("What this does not isolate"))
		for _, l := range e.NotIsolated {
			o.Printf("%s\n", bullet(StepRefs(l)))
		}
		o.Printf("\n")
	}
	o.Printf("Nothing was changed on this machine: --explain only explains.\n")
}

// wrap indents a paragraph and folds it at about 76 columns.
func wrap(s string) string { return wrapAt(s, 74) }

// wrapAt is wrap with lines of at most width characters after the indent.
func wrapAt(s string, width int) string {
	var b strings.Builder
	line := 0
	b.WriteString("  ")
	for _, w := range strings.Fields(s) {
		if line > 0 && line+len(w) > width {
			b.WriteString("\n  ")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// bullet is wrap with a "- " before the first line.
func bullet(s string) string {
	return "  - " + strings.TrimPrefix(strings.ReplaceAll(wrapAt(s, 72), "\n  ", "\n    "), "  ")
}

// StepRefs replaces each {name} of a step in s with its label, "step 8":
// the registry numbers the steps, so the texts name them.
func StepRefs(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		j := strings.IndexByte(s[i+1:], '}')
		if i < 0 || j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+1 : i+1+j]
		b.WriteString(s[:i])
		if st, ok := ByName(name); ok {
			b.WriteString(st.Label())
		} else {
			b.WriteString(s[i : i+2+j])
		}
		s = s[i+2+j:]
	}
}
