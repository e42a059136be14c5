package ui

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Page writes what write prints to Out through a pager when Out is a
// terminal and the text is taller than it, as git does: $PAGER, or less
// (with LESS=FRX unless LESS is set: it quits when the text fits, keeps
// colours and leaves the text on the screen). PAGER=cat, or no pager
// found, writes it as it is; so does anything piped, and a terminal
// without TERM. Err is not paged.
func (o *IO) Page(write func(*IO)) {
	// No TERM, or a dumb one: less would stop to warn about it first.
	if t := os.Getenv("TERM"); !o.OutTTY || o.Height <= 0 || t == "" || t == "dumb" {
		write(o)
		return
	}
	var buf bytes.Buffer
	sub := *o
	sub.Out = &buf
	write(&sub)
	if bytes.Count(buf.Bytes(), []byte("\n")) < o.Height {
		_, _ = o.Out.Write(buf.Bytes())
		return
	}
	pager := pagerCommand()
	if pager == nil {
		_, _ = o.Out.Write(buf.Bytes())
		return
	}
	pager.Stdin, pager.Stdout, pager.Stderr = &buf, o.Out, o.Err
	// A pager that quit early (q, Ctrl-C) is the reader's choice; one
	// that could not start leaves the text to be written here.
	if err := pager.Run(); err != nil && pager.ProcessState == nil {
		_, _ = io.Copy(o.Out, &buf)
	}
}

// pagerCommand is $PAGER (through sh, as git runs it), or less; nil for
// PAGER=cat or when there is none.
func pagerCommand() *exec.Cmd {
	p, set := os.LookupEnv("PAGER")
	p = strings.TrimSpace(p)
	var cmd *exec.Cmd
	switch {
	case set && (p == "" || p == "cat"):
		return nil
	case set:
		cmd = exec.Command("/bin/sh", "-c", p)
	default:
		less, err := exec.LookPath("less")
		if err != nil {
			return nil
		}
		cmd = exec.Command(less)
	}
	cmd.Env = os.Environ()
	if _, ok := os.LookupEnv("LESS"); !ok {
		cmd.Env = append(cmd.Env, "LESS=FRX")
	}
	return cmd
}
