package ui

import (
	"bytes"
	"testing"
)

func TestSpellUsesTheInvocation(t *testing.T) {
	var out, errs bytes.Buffer
	o := Buffers(nil, &out, &errs)
	o.Note("run 'sudo underhood cleanup --all'")
	o.Invocation = "underhood --workdir " + QuoteArg("/tmp/my lab")
	o.Note("run 'sudo underhood cleanup --all'")
	o.Say("Next: sudo underhood chroot (the next one)")
	want := "run 'sudo underhood cleanup --all'\nrun 'sudo underhood --workdir '/tmp/my lab' cleanup --all'\n"
	if errs.String() != want {
		t.Errorf("notes:\n%s\nwant:\n%s", errs.String(), want)
	}
	if out.String() != "Next: sudo underhood --workdir '/tmp/my lab' chroot (the next one)\n" {
		t.Errorf("out: %q", out.String())
	}
	if QuoteArg("/var/lib/underhood") != "/var/lib/underhood" || QuoteArg("a'b") != `'a'\''b'` {
		t.Error("QuoteArg")
	}
}

// Spelling a spelled hint again changes nothing (doctor's hints are
// spelled where they are made and again where they are shown).
func TestSpellTwice(t *testing.T) {
	o := &IO{Invocation: "underhood --workdir /tmp/lab"}
	in := "sudo underhood download, or see 'underhood ps'"
	want := "sudo underhood --workdir /tmp/lab download, or see 'underhood --workdir /tmp/lab ps'"
	if got := o.Spell(o.Spell(in)); got != want {
		t.Errorf("Spell twice: %q, want %q", got, want)
	}
}
