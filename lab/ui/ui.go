// Package ui is underhood's one output layer: streams, colour, tables and
// status words. Colour is used only on a terminal; NO_COLOR and --no-color
// turn it off, and piped output is plain text.
package ui

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fatih/color"
	"golang.org/x/term"
)

// IO carries the streams a command reads and writes, and what they are.
type IO struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	OutTTY bool // stdout is a terminal: tables and progress bars
	InTTY  bool // stdin is a terminal: interactive shells, pauses
	Color  bool // colour is on (a terminal, and not disabled)
	Width  int  // columns to fit tables to: COLUMNS, or the terminal's width; 0 when no terminal shows it (no limit)
	Height int  // the terminal's lines: LINES, or its height; 0 when piped
	// Invocation is how the user called underhood, for the hints: e.g.
	// "underhood --workdir /tmp/lab"; "" is plain "underhood" (see Spell).
	Invocation string
	// NoNext leaves out the "Next:" lines (see Next): the tour goes on by
	// itself.
	NoNext bool
}

// Next says what to do next, unless o.NoNext.
func (o *IO) Next(hint string) {
	if !o.NoNext {
		o.Note("Next: %s", hint)
	}
}

// System returns the process's own streams. Colour is decided once, here.
func System(noColor bool) *IO {
	outTTY := isTerminal(os.Stdout)
	c := outTTY && !noColor && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	if os.Getenv("CLICOLOR_FORCE") != "" && os.Getenv("CLICOLOR_FORCE") != "0" && !noColor && os.Getenv("NO_COLOR") == "" {
		c = true
	}
	o := &IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		OutTTY: outTTY, InTTY: isTerminal(os.Stdin), Color: c}
	ttyW, ttyH := 0, 0
	if outTTY {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			ttyW, ttyH = w, h
		}
	} else if isTerminal(os.Stderr) {
		// Piped into sed, grep or less by a person at a terminal: the
		// lines end up on that terminal, so they fit its width (plain
		// text still, and no paging). Without a terminal (a script, cron,
		// CI) nothing is wrapped; --json is the form for scripts.
		if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil {
			ttyW = w
		}
	}
	o.Width, o.Height = fromEnv("COLUMNS", ttyW), fromEnv("LINES", ttyH)
	return o
}

// Buffers returns an IO for tests: no terminal, no colour.
func Buffers(in io.Reader, out, err io.Writer) *IO {
	return &IO{In: in, Out: out, Err: err}
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func (o *IO) paint(attr color.Attribute, s string) string {
	if !o.Color {
		return s
	}
	c := color.New(attr)
	c.EnableColor()
	return c.Sprint(s)
}

func (o *IO) Bold(s string) string   { return o.paint(color.Bold, s) }
func (o *IO) Green(s string) string  { return o.paint(color.FgGreen, s) }
func (o *IO) Yellow(s string) string { return o.paint(color.FgYellow, s) }
func (o *IO) Red(s string) string    { return o.paint(color.FgRed, s) }
func (o *IO) Cyan(s string) string   { return o.paint(color.FgCyan, s) }
func (o *IO) Faint(s string) string  { return o.paint(color.Faint, s) }

// Level is the outcome of a check.
type Level string

const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Status renders a level word, coloured when colour is on.
func (o *IO) Status(l Level) string {
	switch l {
	case OK:
		return o.Green(string(l))
	case Warn:
		return o.Yellow(string(l))
	case Fail:
		return o.Red(string(l))
	}
	return string(l)
}

// Printf writes to Out, lines wider than the terminal wrapped at spaces.
func (o *IO) Printf(format string, a ...any) { o.wrapTo(o.Out, o.Spell(fmt.Sprintf(format, a...))) }

// Say writes one line to Out, wrapped at spaces if it is wider than the
// terminal.
func (o *IO) Say(a ...any) { o.wrapTo(o.Out, o.Spell(fmt.Sprintln(a...))) }

// Record writes one line to Out that is never wrapped: a result a script
// picks out with grep or tail (the escape's verdict, read through
// "| tail -n 1" on a terminal, would lose its start).
func (o *IO) Record(a ...any) { fmt.Fprint(o.Out, o.Spell(fmt.Sprintln(a...))) }

// Note writes one line to Err: progress and explanations that are not the
// command's data, so that piping stdout keeps only the data. On a terminal
// it is wrapped to the terminal's width.
func (o *IO) Note(format string, a ...any) {
	o.wrapTo(o.Err, o.Spell(fmt.Sprintf(format+"\n", a...)))
}

// Warnf writes a highlighted warning line to Err, wrapped to the
// terminal's width at spaces.
func (o *IO) Warnf(format string, a ...any) {
	o.wrapTo(o.Err, o.Yellow("warning:")+" "+o.Spell(fmt.Sprintf(format, a...))+"\n")
}

// Ago says how long ago, as a person reads it in a table: just now, 5 min
// ago, 3 h ago, 2 days ago.
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
