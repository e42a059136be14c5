package ui

import "strings"

// nbsp joins the words of a command while text is wrapped.
const nbsp = "\u00a0"

// commandStarts are the words that begin a command in a hint or a note
// (and "$", a command line as typed at a prompt);
// so does an assignment of a command's output, toomuch=$(busybox head …).
var commandStarts = map[string]bool{"sudo": true, "busybox": true, "ps": true, "nsenter": true, "ip": true, "echo": true, "$": true}

// shellCommands begin a command only right after a colon, where a hint
// names one ("directory: mkdir -p …"): in prose they are words ("mount
// it again").
var shellCommands = map[string]bool{"mkdir": true, "cd": true, "rmdir": true, "mount": true, "umount": true, "chroot": true, "cp": true, "mv": true, "chmod": true, "chown": true, "rm": true, "wget": true, "curl": true, "cat": true, "kill": true, "ls": true, "setpriv": true, "tee": true, "touch": true, "tar": true, "umoci": true, "skopeo": true, "runc": true, "crun": true, "lsns": true, "ipcs": true, "ipcrm": true}

// afterColon reports whether words[i] follows a word that ends in ":".
func afterColon(words []string, i int) bool {
	return i > 0 && strings.HasSuffix(Strip(words[i-1]), ":")
}

// subcommands are underhood's commands a hint may name without sudo
// (underhood run --rootless, as a user).
var subcommands = map[string]bool{"run": true, "check": true, "cleanup": true, "inspect": true, "ps": true, "doctor": true, "steps": true, "tour": true, "download": true, "rootfs": true, "userns": true}

// startsCommand reports whether words[i] begins a command: one of
// commandStarts, after a quote or "(" too ("(sudo setpriv … sh)"), an
// assignment of a command's output, or, after a colon, a quote or "(",
// "unshare" followed by a flag and "underhood" followed by a flag or one
// of its commands ("as a user: underhood --workdir ~/lab run --rootless";
// prose such as "every underhood run with a cgroup" is not one).
func startsCommand(words []string, i int) bool {
	s := Strip(words[i])
	w := strings.TrimLeft(s, "'`\"(")
	if commandStarts[w] || strings.Contains(w, "=$(") {
		return true
	}
	if afterColon(words, i) && w == s && shellCommands[w] && i+1 < len(words) {
		return true
	}
	if w != "underhood" && w != "unshare" || i+1 == len(words) {
		return false
	}
	// Only where a hint names it: after a colon, a quote or "(", not a
	// process's command line in a table ("unshare --mount …").
	if w == s && !afterColon(words, i) {
		return false
	}
	next := Strip(words[i+1])
	return strings.HasPrefix(next, "-") || w == "underhood" && subcommands[strings.TrimRight(next, ".,;:)'\"")]
}

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
		if !startsCommand(words, i) {
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
		for j+1 < len(words) && !closed && (open || !endsCommand(Strip(words[j])) && !strings.HasPrefix(Strip(words[j+1]), "(") && !joins(words, j+1)) {
			j++
			if quotes(words[j])%2 == 1 {
				open, closed = !open, open
			}
		}
		// A redirection after the quotes is still the command's:
		// sudo sh -c '…' 2>/dev/null.
		for closed && j+1 < len(words) && redirection(Strip(words[j+1])) {
			j++
		}
		unit := strings.Join(words[i:j+1], nbsp)
		if j == i {
			out = append(out, words[i])
			continue
		}
		if Width(unit) > n {
			// Too long for a line: in lines that end in " \", as a shell
			// continues a command, so that it can still be copied and
			// pasted whole; inside quotes only after an operator.
			c := continued(words[i:j+1], n)
			if c == nil {
				out = append(out, words[i])
				continue
			}
			// The command's last line ends with it, so that what a "\"
			// invites one to copy is the command alone, not the words after
			// it ("… /bin/busybox sh (docs/05-unshare.md), then:").
			c[len(c)-1] += inQuote
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

// inQuote ends a unit that the line must break after inside a quoted
// script (sh -c '… &&'), where a shell reads the line end as it would a
// space after the operator; it is taken out with the nbsp.
const inQuote = "\x01"

// continued breaks the words of a command into units of at most n columns,
// each but the last ending in " \\", as a shell continues a command: inside
// the quotes of a script (sh -c '…') too, where the script's own shell
// continues it, but with nothing added after an operator (&&, ||, |, ;),
// where the script goes on on the next line anyway; a line ends there, or
// outside the quotes, where it can. Never inside quotes within quotes. nil
// if a word is too long for a line, or a line would have to end where it
// cannot.
func continued(words []string, n int) []string {
	type word struct {
		text, after string // after: how a line may end after it ("" not at all)
		good        bool   // a good place to end a line
	}
	var ws []word
	outer, nested := byte(0), false // the quote we are in, and one inside it
	for _, w := range words {
		if Width(w)+Width(cont) > n {
			return nil
		}
		sw := Strip(w)
		for i := 0; i < len(sw); i++ {
			switch c := sw[i]; {
			case c != '\'' && c != '"':
			case outer == 0:
				outer = c
			case c == outer && !nested:
				outer = 0
			case c != outer:
				nested = !nested
			}
		}
		switch {
		case outer == 0:
			ws = append(ws, word{w, cont, true})
		case nested:
			ws = append(ws, word{w, "", false})
		case operator(sw):
			ws = append(ws, word{w, inQuote, true})
		default:
			ws = append(ws, word{w, cont, false})
		}
	}
	var out []string
	var line []word
	width := func(l []word) int {
		w := -1
		for _, x := range l {
			w += 1 + Width(x.text)
		}
		return w
	}
	join := func(l []word) string {
		var t []string
		for _, x := range l {
			t = append(t, x.text)
		}
		return strings.Join(t, nbsp) + l[len(l)-1].after
	}
	for _, w := range ws {
		if len(line) == 0 || width(line)+1+Width(w.text)+Width(cont) <= n {
			line = append(line, w)
			continue
		}
		k := len(line) - 1 // end the line at its last good place, or here
		for i := k; i >= 0; i-- {
			if line[i].good {
				if width(append(line[i+1:len(line):len(line)], w))+Width(cont) <= n {
					k = i
				}
				break
			}
		}
		if line[k].after == "" { // in quotes within quotes: before them
			k = -1
			for i := len(line) - 1; i >= 0 && k < 0; i-- {
				if line[i].after != "" && width(append(line[i+1:len(line):len(line)], w))+Width(cont) <= n {
					k = i
				}
			}
			if k < 0 {
				return nil
			}
		}
		out = append(out, join(line[:k+1]))
		line = append(line[k+1:len(line):len(line)], w)
	}
	line[len(line)-1].after = ""
	return append(out, join(line))
}

// operator reports whether a shell may go on on the next line after w.
func operator(w string) bool {
	return w == "&&" || w == "||" || w == "|" || strings.HasSuffix(w, ";") && !strings.HasSuffix(w, `\;`)
}

// breaksAfter reports whether the line must end after unit u.
func breaksAfter(u string) bool { return strings.HasSuffix(u, cont) || strings.HasSuffix(u, inQuote) }

// redirection reports whether w redirects a command's output or input:
// 2>/dev/null, >file, <file, 2>&1.
func redirection(w string) bool {
	w = strings.TrimLeft(w, "0123456789")
	return len(w) > 1 && (w[0] == '>' || w[0] == '<')
}

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

// joins reports whether words[k] is prose after a command, which ends it:
// "and" or "then" ("… check 2 and sudo underhood check 3 …", "cd
// ~/container and run the page's …"; a shell joins with && and ;), or
// "or" before another command.
func joins(words []string, k int) bool {
	switch Strip(words[k]) {
	case "and", "then":
		return true
	case "or":
		return k+1 < len(words) && startsCommand(words, k+1)
	}
	return false
}

func endsCommand(w string) bool {
	return len(w) > 1 && strings.ContainsAny(w[len(w)-1:], ":;,.)")
}

// spaces turns the nbsp of units back into spaces.
func spaces(lines []string) []string {
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(strings.ReplaceAll(l, nbsp, " "), inQuote, "")
	}
	return lines
}
