package ui

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPlainTableWhenPiped(t *testing.T) {
	var out bytes.Buffer
	o := Buffers(nil, &out, &out)
	o.Table([]string{"NAME", "STATE"}, [][]string{{"box-1", "running"}, {"b", "stale"}})
	want := "NAME   STATE\nbox-1  running\nb      stale\n"
	if out.String() != want {
		t.Errorf("piped table:\n%q\nwant\n%q", out.String(), want)
	}
}

func TestColourOffReturnsTextAsIs(t *testing.T) {
	o := Buffers(nil, nil, nil)
	for _, s := range []string{o.Bold("x"), o.Red("x"), o.Green("x"), o.Status(OK)} {
		if strings.Contains(s, "\x1b[") {
			t.Errorf("colour off, got %q", s)
		}
	}
	o.Color = true
	if !strings.Contains(o.Red("x"), "\x1b[") {
		t.Error("colour on, got no escape codes")
	}
}

func TestSystemHonoursNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	t.Setenv("CLICOLOR_FORCE", "1")
	if System(false).Color {
		t.Error("NO_COLOR set, colour on")
	}
	t.Setenv("NO_COLOR", "")
	if !System(false).Color {
		t.Error("CLICOLOR_FORCE set, colour off")
	}
	if System(true).Color {
		t.Error("--no-color, colour on")
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{nil, 0, ""},
		{errors.New("boom"), 1, "boom"},
		{Usagef("memory %q: bad", "abc"), 2, `memory "abc": bad`},
		{fmt.Errorf("wrapped: %w", Usagef("x")), 2, "wrapped: x"},
		{&ExitError{Code: 137}, 137, ""},
		{&ExitError{Code: 1, Err: errors.New("doctor found failures")}, 1, "doctor found failures"},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.code {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.code)
		}
		if c.err != nil && Message(c.err) != c.msg {
			t.Errorf("Message(%v) = %q, want %q", c.err, Message(c.err), c.msg)
		}
	}
}
