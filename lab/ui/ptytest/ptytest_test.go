package ptytest

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The emulator applies colour and cursor moves: text overwritten after a
// cursor-home is gone, a colour shows on its cell, a long line is seen to
// wrap, and the size is the one asked for.
func TestScreenAppliesEscapes(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	script := `stty size; printf '\033[31mred\033[0m old\n'; printf '\033[H\033[Knew\n'; printf '\033[4;1H%0100d\n' 0`
	tm := Start(t, 80, 24, exec.Command(sh, "-c", script))
	if code := tm.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tm.Dump())
	}
	s := tm.Screen()
	if s[0] != "new" || s[1] != "red old" || s[3] != strings.Repeat("0", 80) || s[4] != strings.Repeat("0", 20) {
		t.Errorf("screen:\n%s", tm.Dump())
	}
	if !tm.Coloured(1) || tm.Coloured(0) {
		t.Errorf("colour of rows 0 and 1: %v %v", tm.Coloured(0), tm.Coloured(1))
	}
	if w := tm.Wrapped(); len(w) != 1 || w[0] != 3 {
		t.Errorf("wrapped rows %v, want [3]", w)
	}
	if raw := tm.RawLines(); raw[0] != "24 80" {
		t.Errorf("stty size says %q", raw[0])
	}
	var ft fakeT
	tm.CheckFits(&ft)
	if !ft.failed {
		t.Error("CheckFits passed a 100-column line on 80 columns")
	}
}

// Ctrl-C reaches the command as SIGINT, through the terminal.
func TestCtrlC(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	tm := Start(t, 80, 24, exec.Command(sh, "-c", `trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 0.05; done`))
	tm.WaitFor(t, "ready", 10*time.Second)
	tm.Send(t, "\x03")
	if code := tm.Wait(t, 10*time.Second); code != 3 {
		t.Errorf("exit %d, want 3 from the INT trap:\n%s", code, tm.Dump())
	}
	tm.WaitFor(t, "got INT", time.Second)
}

// Misaligned columns are caught.
func TestCheckColumns(t *testing.T) {
	tm := Start(t, 80, 24, exec.Command("printf", "A     B\\nx     y\\nxx      z\\n"))
	tm.Wait(t, 10*time.Second)
	var ft fakeT
	CheckColumns(&ft, tm.Screen(), "A", "B")
	if !ft.failed {
		t.Errorf("a cell two columns late passed:\n%s", tm.Dump())
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
func (f *fakeT) Error(...any)          { f.failed = true }
