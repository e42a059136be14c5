// Package ui is underhood's one output layer: streams, colour, tables and
// status words. Colour and tables are used only on a terminal; NO_COLOR and
// --no-color turn colour off, and piped output is plain text.
package ui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/fatih/color"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
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
	Width  int  // the terminal's width in columns; 0 when unknown or piped
	// Invocation is how the user called underhood, for the hints: e.g.
	// "underhood --workdir /tmp/lab"; "" is plain "underhood" (see Spell).
	Invocation string
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
	if outTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			o.Width = w
		}
	}
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

// Printf writes to Out.
func (o *IO) Printf(format string, a ...any) { fmt.Fprint(o.Out, o.Spell(fmt.Sprintf(format, a...))) }

// Say writes one line to Out.
func (o *IO) Say(a ...any) { fmt.Fprint(o.Out, o.Spell(fmt.Sprintln(a...))) }

// Note writes one line to Err: progress and explanations that are not the
// command's data, so that piping stdout keeps only the data.
func (o *IO) Note(format string, a ...any) {
	fmt.Fprint(o.Err, o.Spell(fmt.Sprintf(format+"\n", a...)))
}

// Warnf writes a highlighted warning line to Err.
func (o *IO) Warnf(format string, a ...any) {
	fmt.Fprintf(o.Err, "%s %s\n", o.Yellow("warning:"), o.Spell(fmt.Sprintf(format, a...)))
}

// Table writes rows under a header: a bordered table on a terminal, aligned
// plain columns otherwise (easy to read, easy to grep and cut). On a
// terminal, a column empty in every row is left out, and a table too wide
// for the terminal is drawn without borders, which wraps less.
func (o *IO) Table(header []string, rows [][]string) {
	if o.OutTTY {
		header, rows = dropEmptyColumns(header, rows)
	}
	if !o.OutTTY || (o.Width > 0 && tableWidth(header, rows) > o.Width) {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
		return
	}
	t := tablewriter.NewTable(o.Out,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
	)
	h := make([]any, len(header))
	for i, s := range header {
		h[i] = o.Bold(s)
	}
	t.Header(h...)
	for _, r := range rows {
		_ = t.Append(r)
	}
	_ = t.Render()
}

// dropEmptyColumns removes the columns that have no value in any row.
func dropEmptyColumns(header []string, rows [][]string) ([]string, [][]string) {
	keep := make([]bool, len(header))
	for _, r := range rows {
		for i, c := range r {
			if i < len(keep) && strings.TrimSpace(c) != "" {
				keep[i] = true
			}
		}
	}
	pick := func(r []string) []string {
		var out []string
		for i, c := range r {
			if i >= len(keep) || keep[i] {
				out = append(out, c)
			}
		}
		return out
	}
	if len(rows) == 0 {
		return header, rows
	}
	nr := make([][]string, len(rows))
	for i, r := range rows {
		nr[i] = pick(r)
	}
	return pick(header), nr
}

// tableWidth is how wide the bordered table would be: the widest cell of
// each column plus its padding and border.
func tableWidth(header []string, rows [][]string) int {
	w := make([]int, len(header))
	for i, h := range header {
		w[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(w) && len([]rune(c)) > w[i] {
				w[i] = len([]rune(c))
			}
		}
	}
	total := 1
	for _, n := range w {
		total += n + 3
	}
	return total
}
