package ui

import "strings"

// nbsp joins the words of a command while text is wrapped.
const nbsp = "\u00a0"

// commandStarts are the words that begin a command in a hint or a note;
// so does an assignment of a command's output, toomuch=$(busybox head …).
var commandStarts = map[string]bool{"sudo": true, "busybox": true, "ps": true, "nsenter": true, "ip": true}

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
		if j == i || Width(unit) > n {
			out = append(out, words[i])
			continue
		}
		out = append(out, unit)
		i = j
	}
	return out
}

func quotes(w string) int { return strings.Count(w, "'") }

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
