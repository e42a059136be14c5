package ui

import "strings"

// nbsp joins the words of a command while text is wrapped.
const nbsp = "\u00a0"

// commandStarts are the words that begin a command in a hint or a note
// (and "$", a command line as typed at a prompt);
// so does an assignment of a command's output, toomuch=$(busybox head …).
var commandStarts = map[string]bool{"sudo": true, "busybox": true, "ps": true, "nsenter": true, "ip": true, "$": true}

// units splits s into the words wrapping may break between, keeping the
// words of a command together (joined by nbsp), so that a hint such as
// "Next: sudo underhood chroot (step 3)" never breaks inside the command
// and can be copied from the terminal as it is. A command starts at one
// of commandStarts and ends at a word that ends in : ; , . or ), or before
// one that starts with "(", but never inside single quotes. One wider
// than n stays in words.
func units(s string, n int) []string {
	words := strings.Fields(s)
	var out []string
	for i := 0; i < len(words); i++ {
		if w := strings.TrimLeft(Strip(words[i]), "'`\""); !commandStarts[w] && !strings.Contains(w, "=$(") {
			// A quantity stays with its unit: "7.0 MiB", never "7.0" / "MiB.".
			if i+1 < len(words) && isNumber(Strip(words[i])) && sizeUnits[strings.TrimRight(Strip(words[i+1]), ".,;:)")] {
				out = append(out, words[i]+nbsp+words[i+1])
				i++
				continue
			}
			out = append(out, words[i])
			continue
		}
		// Inside single quotes (sh -c '…; …') nothing ends the command;
		// the word that closes them does.
		j, open, closed := i, quotes(words[i])%2 == 1, false
		for j+1 < len(words) && !closed && (open || !endsCommand(Strip(words[j])) && !strings.HasPrefix(Strip(words[j+1]), "(")) {
			j++
			if quotes(words[j])%2 == 1 {
				open, closed = !open, open
			}
		}
		unit := strings.Join(words[i:j+1], nbsp)
		if j == i {
			out = append(out, words[i])
			continue
		}
		if Width(unit) > n {
			// Too long for a line: in lines that end in " \", as a shell
			// continues a command, so that it can still be copied and
			// pasted whole. Not inside quotes, where \ stays as it is.
			c := continued(words[i:j+1], n)
			if c == nil {
				out = append(out, words[i])
				continue
			}
			out = append(out, c...)
			i = j
			continue
		}
		out = append(out, unit)
		i = j
	}
	return out
}

// cont ends a unit that the line must break after: a command continued.
const cont = nbsp + "\\"

// continued breaks the words of a command into units of at most n columns,
// each but the last ending in " \"; nil if the command has quotes, or a
// word too long for a line.
func continued(words []string, n int) []string {
	var out []string
	cur := ""
	for _, w := range words {
		if strings.ContainsAny(Strip(w), "'\"") || Width(w)+Width(cont) > n {
			return nil
		}
		switch {
		case cur == "":
			cur = w
		case Width(cur)+1+Width(w)+Width(cont) <= n:
			cur += nbsp + w
		default:
			out = append(out, cur+cont)
			cur = w
		}
	}
	return append(out, cur)
}

// breaksAfter reports whether the line must end after unit u.
func breaksAfter(u string) bool { return strings.HasSuffix(u, cont) }

func quotes(w string) int { return strings.Count(w, "'") }

// sizeUnits are the units a quantity is written with.
var sizeUnits = map[string]bool{"B": true, "KiB": true, "MiB": true, "GiB": true, "TiB": true, "bytes": true, "ms": true, "µs": true, "s": true, "%": true, "CPUs": true}

// isNumber reports whether w is a number such as 7, 7.0 or 1024 (a
// leading "(" allowed).
func isNumber(w string) bool {
	w = strings.TrimLeft(w, "(")
	if w == "" {
		return false
	}
	dot := false
	for _, r := range w {
		switch {
		case r == '.' && !dot:
			dot = true
		case r < '0' || r > '9':
			return false
		}
	}
	return w != "."
}

func endsCommand(w string) bool {
	return len(w) > 1 && strings.ContainsAny(w[len(w)-1:], ":;,.)")
}

// spaces turns the nbsp of units back into spaces.
func spaces(lines []string) []string {
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(l, nbsp, " ")
	}
	return lines
}
