package ui

import (
	"io"
	"strings"
)

// Shell prints lines of a shell session as a person types them, under a
// lead of indent spaces: "$ " before a command, "/ # " lines (typed in a
// container) as they are, "# " comments as comments. Where a line is
// wider than the terminal, what is printed still runs when copied: a
// command goes on in lines that end in " \", a comment goes on in lines
// that start with "#", a command's comment goes on its own lines above it,
// and the lines of a quoted script that spans lines (sh -ec '…') get no
// "$ " of their own and are never broken.
func (o *IO) Shell(indent int, prompt string, lines []string) {
	lead := strings.Repeat(" ", indent)
	open := false // inside a quoted script begun on an earlier line
	for _, l := range lines {
		switch {
		case open:
			// A script's own lines, as they are: a break inside its quotes
			// would change it.
			io.WriteString(o.Out, lead+"  "+o.Spell(l)+"\n")
		case strings.HasPrefix(l, "#"):
			o.comment(lead, strings.TrimSpace(strings.TrimPrefix(l, "#")))
		case strings.HasPrefix(l, prompt):
			o.command(lead+prompt, l[len(prompt):])
		default:
			o.command(lead+"$ ", l)
		}
		code := l
		if !open {
			code, _ = splitComment(l)
		}
		if !strings.HasPrefix(l, "#") && strings.Count(code, "'")%2 == 1 {
			open = !open
		}
	}
}

// comment prints text as shell comments under lead, each line starting
// with "# ".
func (o *IO) comment(lead, text string) {
	text = o.Spell(text)
	n := o.Width - len(lead) - 2
	if o.Width <= 0 || n < minCol {
		io.WriteString(o.Out, lead+"# "+text+"\n")
		return
	}
	for _, l := range wrap2(text, n, n) {
		io.WriteString(o.Out, lead+"# "+l+"\n")
	}
}

// command prints a command line after lead ("  $ "): whole when it fits;
// otherwise its comment first, on lines of its own, and the command
// continued with " \", each further line two columns in from the lead.
func (o *IO) command(lead, line string) {
	line = o.Spell(line)
	if o.Width <= 0 || Width(lead+line) <= o.Width {
		io.WriteString(o.Out, lead+line+"\n")
		return
	}
	cmd, note := splitComment(line)
	if note != "" {
		o.comment(strings.Repeat(" ", len(lead)-len(strings.TrimLeft(lead, " "))), note)
		if Width(lead+cmd) <= o.Width {
			io.WriteString(o.Out, lead+cmd+"\n")
			return
		}
	}
	indent := len(lead) + 2
	parts := continued(strings.Fields(cmd), o.Width-indent)
	if parts == nil {
		o.Hanging(lead+cmd, indent)
		return
	}
	pad := strings.Repeat(" ", indent)
	for i, p := range spaces(parts) {
		if i == 0 {
			io.WriteString(o.Out, lead+p+"\n")
			continue
		}
		io.WriteString(o.Out, pad+p+"\n")
	}
}

// splitComment cuts a shell line into its command and the comment after
// it: a # that begins a word, outside quotes.
func splitComment(line string) (cmd, note string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && i > 0 && (line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimRight(line[:i], " \t"), strings.TrimSpace(line[i+1:])
		}
	}
	return line, ""
}
