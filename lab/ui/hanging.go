package ui

import (
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// Hanging writes s, one line, to Out: on a terminal wrapped to its width at
// spaces, each line after the first indented by indent spaces (an item of
// a list, a hint); piped, as it is. A word longer than a line is broken.
func (o *IO) Hanging(s string, indent int) { o.hangingTo(o.Out, s, indent) }

// NoteHanging is Hanging to Err, where the notes go.
func (o *IO) NoteHanging(s string, indent int) { o.hangingTo(o.Err, s, indent) }

func (o *IO) hangingTo(w io.Writer, s string, indent int) {
	s = o.Spell(s)
	if o.Width <= 0 || Width(s) <= o.Width || o.Width <= indent+minCol {
		io.WriteString(w, s+"\n")
		return
	}
	body := strings.TrimLeft(s, " ")
	lead := strings.Repeat(" ", len(s)-len(body))
	pad := strings.Repeat(" ", indent)
	var lines []string
	if strings.Contains(body, "\x1b[") {
		// Colour: wrap closes and reopens it on every line.
		lines = wrap(body, o.Width-max(len(lead), indent))
	} else {
		lines = wrap2(body, o.Width-len(lead), o.Width-indent)
	}
	for i, l := range lines {
		p := pad
		if i == 0 {
			p = lead
		}
		io.WriteString(w, p+l+"\n")
	}
}

// wrap2 breaks plain text at spaces into a first line of at most first
// columns and further lines of at most rest.
func wrap2(s string, first, rest int) []string {
	var lines []string
	line, n := "", first
	for _, word := range units(s, min(first, rest)) {
		for Width(word) > n && n > 0 { // longer than a line: break it
			if line != "" {
				lines, line, n = append(lines, line), "", rest
			}
			head := truncate(word, n)
			lines, word, n = append(lines, head), word[len(head):], rest
		}
		switch {
		case word == "":
		case line == "":
			line = word
		case strings.HasSuffix(word, cont):
			// A command continued over lines starts a line of its own, so
			// that what is copied from its first line is the command alone,
			// not "gid_map:" before it (walkthrough 13).
			lines, line, n = append(lines, line), word, rest
		case Width(line)+1+Width(word) <= n:
			line += " " + word
		default:
			lines, line, n = append(lines, line), word, rest
		}
		if breaksAfter(word) {
			lines, line, n = append(lines, line), "", rest
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return spaces(lines)
}

// truncate is the longest head of plain text s that fits n columns.
func truncate(s string, n int) string { return runewidth.Truncate(s, n, "") }
