package ui

import "strings"

// Spell writes the hints in s the way the user invoked underhood: with
// Invocation set (e.g. "underhood --workdir /tmp/lab"), every "sudo
// underhood …" in s becomes "sudo underhood --workdir /tmp/lab …", so that
// a hint typed back reaches the same lab (sudo drops $UNDERHOOD_HOME).
func (o *IO) Spell(s string) string {
	if o == nil || o.Invocation == "" || o.Invocation == "underhood" {
		return s
	}
	// "sudo underhood ps" and a quoted 'underhood ps' (see 'underhood ps');
	// what is spelled already stays as it is, so that spelling twice (a
	// hint spelled where it is made, then where it is shown) is harmless.
	for _, pre := range []string{"sudo ", "'"} {
		done := pre + o.Invocation + " "
		s = strings.ReplaceAll(s, done, "\x00")
		s = strings.ReplaceAll(s, pre+"underhood ", done)
		s = strings.ReplaceAll(s, "\x00", done)
	}
	return s
}

// QuoteArg quotes a word for a POSIX shell when it needs it.
func QuoteArg(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:@%,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
