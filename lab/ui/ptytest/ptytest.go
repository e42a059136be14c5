// Package ptytest runs a command under a pseudo-terminal of a given size
// and keeps the screen a person would see, through a terminal emulator
// (github.com/hinshun/vt10x): tests assert on what is shown, colour and
// cursor moves applied, not on the bytes written. It also keeps the raw
// bytes, for what scrolled off the screen.
package ptytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"
	"github.com/mattn/go-runewidth"
)

// Term is one command running under a pseudo-terminal.
type Term struct {
	Cols, Rows int
	cmd        *exec.Cmd
	pty        *os.File
	mu         sync.Mutex
	vt         vt10x.Terminal
	raw        bytes.Buffer
	drained    chan struct{} // closed when the command's output is all read
	exited     chan struct{} // closed when the command has exited
	err        error         // from Wait
}

// Env is the environment a command gets: the test's own, without what
// would change what it shows (NO_COLOR, CLICOLOR_FORCE, COLUMNS, LINES),
// with TERM=xterm-256color, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NO_COLOR", "CLICOLOR_FORCE", "COLUMNS", "LINES", "TERM":
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "TERM=xterm-256color"), extra...)
}

// Start runs cmd with its stdin, stdout and stderr on a new pseudo-terminal
// of cols×rows, as the session leader with it as its controlling terminal,
// so that Ctrl-C sent to it signals the command. The command is killed (by
// its PID) and waited for when the test ends, if it is still running.
func Start(t testing.TB, cols, rows int, cmd *exec.Cmd) *Term {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = Env()
	}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatalf("start %s under a pty: %v", cmd.Path, err)
	}
	tm := &Term{Cols: cols, Rows: rows, cmd: cmd, pty: f,
		vt:      vt10x.New(vt10x.WithSize(cols, rows)),
		drained: make(chan struct{}), exited: make(chan struct{})}
	go tm.read()
	go func() {
		tm.err = cmd.Wait()
		close(tm.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-tm.exited:
		default:
			_ = cmd.Process.Kill()
			<-tm.exited
		}
		f.Close()
	})
	return tm
}

// read feeds the command's output to the emulator until the pty reports
// EIO: every process holding its other end has closed it.
func (tm *Term) read() {
	defer close(tm.drained)
	buf := make([]byte, 32*1024)
	var pending []byte // a rune cut in two by a read
	for {
		n, err := tm.pty.Read(buf)
		if n > 0 {
			tm.mu.Lock()
			tm.raw.Write(buf[:n])
			pending = append(pending, buf[:n]...)
			w, _ := tm.vt.Write(pending)
			pending = append(pending[:0], pending[w:]...)
			tm.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Send types s: "\x03" is Ctrl-C, "\x04" Ctrl-D.
func (tm *Term) Send(t testing.TB, s string) {
	t.Helper()
	if _, err := tm.pty.WriteString(s); err != nil {
		t.Fatalf("type %q: %v", s, err)
	}
}

// WaitFor waits until the screen shows want, and fails the test with the
// screen when it does not within d.
func (tm *Term) WaitFor(t testing.TB, want string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if strings.Contains(strings.Join(tm.Screen(), "\n"), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("after %v the screen does not show %q:\n%s", d, want, tm.Dump())
}

// Exited reports whether the command has exited.
func (tm *Term) Exited() bool {
	select {
	case <-tm.exited:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the command to exit and its output to be read,
// and returns its exit status (-1 for a signal). It fails the test on a
// timeout.
func (tm *Term) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-tm.exited:
	case <-time.After(d):
		t.Fatalf("%s still running after %v; the screen:\n%s", tm.cmd.Path, d, tm.Dump())
	}
	select {
	case <-tm.drained:
	case <-time.After(2 * time.Second): // a child kept the pty open
	}
	var ee *exec.ExitError
	switch {
	case tm.err == nil:
		return 0
	case errors.As(tm.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", tm.err)
	return -1
}

// Screen is what the terminal shows, one string per row, trailing spaces
// trimmed.
func (tm *Term) Screen() []string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.vt.Lock()
	defer tm.vt.Unlock()
	rows := make([]string, tm.Rows)
	for y := range rows {
		var b strings.Builder
		for x := 0; x < tm.Cols; x++ {
			c := tm.vt.Cell(x, y).Char
			if c == 0 {
				c = ' '
			}
			b.WriteRune(c)
		}
		rows[y] = strings.TrimRight(b.String(), " ")
	}
	return rows
}

// attrWrap is vt10x's mark on the last cell of a row the text ran past.
const attrWrap = 1 << 6

// Wrapped lists the rows on screen whose text was too long for the
// terminal and ran on into the next row.
func (tm *Term) Wrapped() []int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.vt.Lock()
	defer tm.vt.Unlock()
	var rows []int
	for y := 0; y < tm.Rows; y++ {
		if tm.vt.Cell(tm.Cols-1, y).Mode&attrWrap != 0 {
			rows = append(rows, y)
		}
	}
	return rows
}

// Coloured says whether any cell of row y is drawn in a colour other than
// the default foreground.
func (tm *Term) Coloured(y int) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.vt.Lock()
	defer tm.vt.Unlock()
	for x := 0; x < tm.Cols; x++ {
		if c := tm.vt.Cell(x, y); c.Char != ' ' && c.Char != 0 && c.FG != vt10x.DefaultFG {
			return true
		}
	}
	return false
}

// escape matches the control sequences a program writes (CSI, OSC, and
// two-byte escapes), to measure the raw output's visible lines.
var escape = regexp.MustCompile("\x1b(\\[[0-9;?]*[ -/]*[@-~]|\\][^\x07\x1b]*(\x07|\x1b\\\\)|[@-Z\\\\-_])")

// RawLines is everything the command wrote, split into lines, without
// escape sequences and carriage returns: what scrolled off the screen too.
func (tm *Term) RawLines() []string {
	tm.mu.Lock()
	s := tm.raw.String()
	tm.mu.Unlock()
	s = escape.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Raw is everything the command wrote, escape sequences included.
func (tm *Term) Raw() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.raw.String()
}

// Dump is the screen in a frame, for failure messages.
func (tm *Term) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%s+ %dx%d\n", strings.Repeat("-", tm.Cols), tm.Cols, tm.Rows)
	for _, r := range tm.Screen() {
		fmt.Fprintf(&b, "|%s%s|\n", r, strings.Repeat(" ", max(0, tm.Cols-runewidth.StringWidth(r))))
	}
	fmt.Fprintf(&b, "+%s+\n", strings.Repeat("-", tm.Cols))
	return b.String()
}

// CheckFits fails the test for any line, on screen or scrolled off, wider
// than the terminal.
func (tm *Term) CheckFits(t testing.TB) {
	t.Helper()
	if rows := tm.Wrapped(); len(rows) > 0 {
		t.Errorf("rows %v ran past the terminal's %d columns:\n%s", rows, tm.Cols, tm.Dump())
	}
	for _, l := range tm.RawLines() {
		if w := runewidth.StringWidth(l); w > tm.Cols {
			t.Errorf("a line %d wide on a terminal of %d: %q", w, tm.Cols, l)
		}
	}
}

// CheckColumns finds the table whose header row holds every word of
// header among lines (the Screen, or the RawLines when the table scrolled
// off), and fails the test unless each of its rows, up to the first blank
// one or one without a gap of two spaces (prose), has text after a gap of two or more spaces only at a column's
// start: the columns line up as a person sees them.
func CheckColumns(t testing.TB, screen []string, header ...string) {
	t.Helper()
	dump := strings.Join(screen, "\n")
	at := -1
	var offs []int
	for y, row := range screen {
		offs = offs[:0]
		from := 0
		for _, h := range header {
			i := strings.Index(row[from:], h)
			if i < 0 {
				break
			}
			offs = append(offs, runewidth.StringWidth(row[:from+i]))
			from += i + len(h)
		}
		if len(offs) == len(header) {
			at = y
			break
		}
	}
	if at < 0 {
		t.Fatalf("no table headed %v:\n%s", header, dump)
	}
	rows := 0
	for _, row := range screen[at+1:] {
		if strings.TrimSpace(row) == "" || !strings.Contains(row, "  ") {
			break // a blank line, or prose: the table has ended
		}
		rows++
		r := []rune(row)
		for i := 2; i < len(r); i++ {
			if r[i] != ' ' && r[i-1] == ' ' && r[i-2] == ' ' && !contains(offs, i) {
				t.Errorf("text at column %d, not at a column's start %v:\n%s\n%s", i, offs, screen[at], row)
			}
		}
		for _, off := range offs[1:] {
			if off-1 < len(r) && r[off-1] != ' ' {
				t.Errorf("a cell runs into the column at %d:\n%s\n%s", off, screen[at], row)
			}
		}
	}
	if rows == 0 {
		t.Errorf("the table headed %v has no rows:\n%s", header, dump)
	}
}

func contains(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}
