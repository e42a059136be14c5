package ui

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/mattn/go-runewidth"
)

// Tables are drawn by hand, one style everywhere: columns two spaces apart,
// the header bold when colour is on. The same on a terminal and in a pipe,
// so what the guide shows is what a learner sees, and the output stays easy
// to grep and cut. Widths are measured on the visible text (escape codes
// left out); on a terminal the table is fitted to its width.

// ansi matches the escape sequences colour puts in a cell (SGR and the like).
var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// Strip returns s without its terminal escape sequences.
func Strip(s string) string { return ansi.ReplaceAllString(s, "") }

// Width is how many terminal columns s takes: its visible text only.
func Width(s string) int { return runewidth.StringWidth(Strip(s)) }

// gap is the space between two columns.
const gap = 2

// minCol is the narrowest a column is made when the table must shrink.
const minCol = 6

// Table writes rows under a header, in aligned columns. A column empty in
// every row is left out. When the table is wider than o.Width (0: no limit),
// the widest columns are narrowed and their cells wrap within them. Lines
// carry no trailing spaces.
func (o *IO) Table(header []string, rows [][]string) {
	header, rows = dropEmptyColumns(header, rows)
	n := len(header)
	if n == 0 {
		return
	}
	w := make([]int, n)
	for i, h := range header {
		w[i] = Width(h)
	}
	for _, r := range rows {
		for i := 0; i < n && i < len(r); i++ {
			w[i] = max(w[i], Width(r[i]))
		}
	}
	fit(w, longestWords(header, rows), o.Width)
	h := make([]string, n)
	for i, s := range header {
		h[i] = o.Bold(s)
	}
	writeRow(o.Out, h, w)
	for _, r := range rows {
		writeRow(o.Out, r, w)
	}
}

// fit narrows the column widths w until the table is at most limit wide,
// one column at a time, always the widest: cells then wrap onto further
// lines, and nothing is lost. A column is first narrowed only down to its
// longest word (words[i]), so that words wrap whole (a path or a file
// name is not cut in two) while another column can still give way; only
// when none can are words broken.
func fit(w, words []int, limit int) {
	if limit <= 0 {
		return
	}
	over := gap*(len(w)-1) - limit
	for _, n := range w {
		over += n
	}
	for ; over > 0; over-- {
		i := widest(w, func(i int) bool { return w[i] > max(words[i], minCol) })
		if i < 0 {
			i = widest(w, func(i int) bool { return w[i] > minCol })
		}
		if i < 0 {
			return // too narrow a terminal: wrap what can be wrapped
		}
		w[i]--
	}
}

// widest is the index of the widest column that may narrow, or -1.
func widest(w []int, may func(int) bool) int {
	best := -1
	for i := range w {
		if may(i) && (best < 0 || w[i] > w[best]) {
			best = i
		}
	}
	return best
}

// longestWords is, per column, the width of its longest word.
func longestWords(header []string, rows [][]string) []int {
	words := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i := 0; i < len(words) && i < len(r); i++ {
			for _, f := range strings.Fields(Strip(r[i])) {
				words[i] = max(words[i], Width(f))
			}
		}
	}
	return words
}

// writeRow writes one row: each cell wrapped within its column, on as many
// lines as its longest cell needs, every piece starting at its column.
// Padding is written only before a piece, so no line ends in spaces.
func writeRow(out io.Writer, r []string, w []int) {
	cells := make([][]string, len(w))
	height := 1
	for i := range w {
		c := ""
		if i < len(r) {
			c = r[i]
		}
		cells[i] = wrap(c, w[i])
		height = max(height, len(cells[i]))
	}
	for l := 0; l < height; l++ {
		var b strings.Builder
		pad := 0
		for i := range w {
			piece := ""
			if l < len(cells[i]) {
				piece = cells[i][l]
			}
			if Width(piece) > 0 {
				b.WriteString(strings.Repeat(" ", pad))
				b.WriteString(piece)
				pad = 0
			}
			pad += w[i] - Width(piece) + gap
		}
		io.WriteString(out, b.String()+"\n")
	}
}

// reset ends every colour and attribute.
const reset = "\x1b[0m"

// wrap breaks s into lines of at most n visible columns, at spaces where it
// can, and mid-word where a word is longer than the column. A colour that
// spans a break is closed at the end of the line and opened again on the
// next, so it never bleeds into the padding or the next column.
func wrap(s string, n int) []string {
	if Width(s) <= n || n <= 0 {
		return []string{s}
	}
	var lines []string
	line, open := "", "" // open: the SGR codes in force where line begins
	flush := func() {
		if line == "" {
			return
		}
		full := open + line
		open = activeSGR(full)
		if open != "" {
			full += reset
		}
		lines = append(lines, full)
		line = ""
	}
	for _, word := range units(s, n) {
		for Width(word) > n { // longer than the column: break it
			flush()
			plain := Strip(word)
			head := runewidth.Truncate(plain, n, "")
			line = head
			flush()
			word = plain[len(head):]
		}
		switch {
		case line == "":
			line = word
		case Width(line)+1+Width(word) <= n && !strings.HasSuffix(word, cont):
			line += " " + word
		default: // full, or a command continued over lines: on its own
			flush()
			line = word
		}
		if breaksAfter(word) {
			flush()
		}
	}
	flush()
	if len(lines) == 0 {
		return []string{""}
	}
	return spaces(lines)
}

// activeSGR returns the SGR codes still in force at the end of s: those
// after its last reset.
func activeSGR(s string) string {
	var codes []string
	for _, c := range ansi.FindAllString(s, -1) {
		if !strings.HasSuffix(c, "m") {
			continue
		}
		if c == reset || c == "\x1b[m" {
			codes = nil
			continue
		}
		codes = append(codes, c)
	}
	return strings.Join(codes, "")
}

// dropEmptyColumns removes the columns that have no value in any row.
func dropEmptyColumns(header []string, rows [][]string) ([]string, [][]string) {
	if len(rows) == 0 {
		return header, rows
	}
	keep := make([]bool, len(header))
	for _, r := range rows {
		for i, c := range r {
			if i < len(keep) && strings.TrimSpace(Strip(c)) != "" {
				keep[i] = true
			}
		}
	}
	pick := func(r []string) []string {
		out := make([]string, 0, len(r))
		for i := range header {
			if keep[i] {
				c := ""
				if i < len(r) {
					c = r[i]
				}
				out = append(out, c)
			}
		}
		return out
	}
	nr := make([][]string, len(rows))
	for i, r := range rows {
		nr[i] = pick(r)
	}
	return pick(header), nr
}

// fromEnv is a screen size: the variable (COLUMNS, LINES) when it is set
// to a number (the user's own choice, piped or not), else the terminal's
// (asked once, by the caller), else 0, no limit.
func fromEnv(name string, tty int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv(name))); err == nil && n > 0 {
		return n
	}
	return tty
}

// Cut shortens s to at most n visible columns, ending in "…" when it was
// longer; a colour open where it is cut is closed.
func Cut(s string, n int) string {
	if Width(s) <= n {
		return s
	}
	var b strings.Builder
	w := 0
	rest := s
	for rest != "" {
		if loc := ansi.FindStringIndex(rest); loc != nil && loc[0] == 0 {
			b.WriteString(rest[:loc[1]])
			rest = rest[loc[1]:]
			continue
		}
		r := []rune(rest)[0]
		rw := runewidth.RuneWidth(r)
		if w+rw > n-1 {
			break
		}
		b.WriteRune(r)
		w += rw
		rest = rest[len(string(r)):]
	}
	b.WriteString("…")
	if activeSGR(b.String()) != "" {
		b.WriteString(reset)
	}
	return b.String()
}

// Wrapf writes a paragraph to Out, its words wrapped to the terminal's
// width (as they are when piped: no limit). Blank lines and line breaks in
// the text are kept, and hints spelled as the user invoked underhood.
func (o *IO) Wrapf(format string, a ...any) {
	o.wrapTo(o.Out, o.Spell(fmt.Sprintf(format, a...)))
}

// wrapTo writes s to w with its lines wrapped to the terminal's width.
func (o *IO) wrapTo(w io.Writer, s string) {
	if o.Width <= 0 {
		io.WriteString(w, s)
		return
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i > 0 {
			io.WriteString(w, "\n")
		}
		if Width(l) > o.Width {
			// An indented line keeps its indent on every line.
			body := strings.TrimLeft(l, " ")
			lead := l[:len(l)-len(body)]
			if n := o.Width - len(lead); n >= minCol {
				l = lead + strings.Join(wrap(body, n), "\n"+lead)
			} else {
				l = strings.Join(wrap(l, o.Width), "\n")
			}
		}
		io.WriteString(w, l)
	}
}
