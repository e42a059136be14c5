package ui

import "testing"

// Hints quoted as 'underhood CMD' name the work directory the user gave,
// as the sudo ones do.
func TestSpellQuoted(t *testing.T) {
	o := &IO{Invocation: "underhood --workdir /tmp/lab"}
	for in, want := range map[string]string{
		"no lab container x; see 'underhood ps'": "no lab container x; see 'underhood --workdir /tmp/lab ps'",
		"run: sudo underhood cleanup x":          "run: sudo underhood --workdir /tmp/lab cleanup x",
		"underhood: cleanup: give one run name":  "underhood: cleanup: give one run name",
		"(see 'sudo underhood --help')":          "(see 'sudo underhood --workdir /tmp/lab --help')",
	} {
		if got := o.Spell(in); got != want {
			t.Errorf("Spell(%q) = %q, want %q", in, got, want)
		}
	}
}
