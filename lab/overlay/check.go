package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// precheck refuses, before any mount, what overlayfs would refuse with a bare
// EINVAL, so the message can say which directory is wrong.
func (l Layer) precheck() error {
	for _, d := range []string{l.Lower, l.Upper, l.Work} {
		if strings.ContainsAny(d, ",:") {
			return &Error{Kind: Layout, Err: fmt.Errorf("%s: a ',' or ':' in an overlay path cannot be passed to mount", d)}
		}
	}
	if _, err := os.Stat(l.Lower); err != nil {
		return &Error{Kind: Layout, Err: fmt.Errorf("lower directory: %w", err)}
	}
	up, err1 := os.Stat(l.Upper)
	wk, err2 := os.Stat(l.Work)
	if err := errors.Join(err1, err2); err != nil {
		return &Error{Kind: Layout, Err: err}
	}
	if up.Sys().(*syscall.Stat_t).Dev != wk.Sys().(*syscall.Stat_t).Dev {
		return &Error{Kind: Layout, Err: fmt.Errorf("work directory %s is not on the filesystem of upper directory %s", l.Work, l.Upper)}
	}
	magic, name, err := fsType(l.Upper)
	if err != nil {
		return &Error{Kind: Other, Err: err}
	}
	if noUpper[magic] {
		return &Error{Kind: UpperFS, Err: fmt.Errorf("upper directory %s is on %s, which cannot hold an overlay upper layer", l.Upper, name)}
	}
	return nil
}

// classify turns a failed mount(2) into an *Error with the likely cause.
func (l Layer) classify(err error) error {
	if errors.Is(err, unix.ENODEV) || Supported() != nil {
		return &Error{Kind: Missing, Err: err}
	}
	if errors.Is(err, unix.EPERM) {
		return &Error{Kind: Other, Err: err}
	}
	if _, name, e := fsType(l.Lower); e == nil && name == "overlay" {
		return &Error{Kind: LowerFS, Err: fmt.Errorf("lower directory %s is itself on an overlay, stacked too deep or unsupported: %w", l.Lower, err)}
	}
	if _, name, e := fsType(l.Upper); e == nil {
		return &Error{Kind: UpperFS, Err: fmt.Errorf("upper directory %s is on %s: %w", l.Upper, name, err)}
	}
	return &Error{Kind: Other, Err: err}
}
