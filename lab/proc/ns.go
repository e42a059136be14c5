package proc

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// NSTypes are the namespace types of /proc/PID/ns, in lsns's order of names.
var NSTypes = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

// ErrNoNamespace means the kernel has no namespace of that type (no
// /proc/PID/ns/TYPE entry at all, e.g. time before Linux 5.6).
var ErrNoNamespace = errors.New("namespace type not in this kernel")

// Path is the path of name inside the process's directory, e.g.
// Path(42, "ns", "pid") is /proc/42/ns/pid.
func (r Root) Path(pid int, name ...string) string { return r.path(pid, name...) }

// NS is the inode number of the process's namespace of type typ, read from
// the link /proc/PID/ns/TYPE ("pid:[4026531836]"). Two processes share a
// namespace exactly when these numbers are equal.
//
// A process that is gone, or a zombie (whose namespaces are already
// released), gives ErrExited; another user's process without root gives an
// error that matches fs.ErrPermission.
func (r Root) NS(pid int, typ string) (uint64, error) {
	p := r.path(pid, "ns", typ)
	s, err := os.Readlink(p)
	if err != nil {
		return 0, r.linkErr(pid, p, err)
	}
	t, ino, err := ParseNSLink(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	if t != typ {
		return 0, fmt.Errorf("parse %s: link %q is not a %s namespace", p, s, typ)
	}
	return ino, nil
}

func (r Root) linkErr(pid int, p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		if _, derr := os.Lstat(r.path(pid)); derr != nil {
			return fmt.Errorf("read %s: %w", p, ErrExited)
		}
		if _, lerr := os.Lstat(p); lerr != nil {
			return fmt.Errorf("read %s: %w", p, ErrNoNamespace)
		}
		// The entry is there but leads nowhere: a zombie.
		return fmt.Errorf("read %s: %w", p, ErrExited)
	}
	return err // a *fs.PathError: "readlink /proc/1/ns/pid: permission denied"
}

// ParseNSLink splits a namespace link's text, "pid:[4026531836]", into its
// type and inode number.
func ParseNSLink(s string) (typ string, inode uint64, err error) {
	t, rest, ok := strings.Cut(s, ":[")
	if !ok || t == "" || !strings.HasSuffix(rest, "]") {
		return "", 0, fmt.Errorf("namespace link %q: want TYPE:[INODE]", s)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("namespace link %q: inode: %w", s, err)
	}
	return t, n, nil
}

// Link reads a symbolic link of the process's directory ("root", "cwd",
// "exe"). A process that is gone gives ErrExited.
func (r Root) Link(pid int, name string) (string, error) {
	p := r.path(pid, name)
	s, err := os.Readlink(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return "", fmt.Errorf("read %s: %w", p, ErrExited)
		}
		return "", err // a *fs.PathError, which names the link
	}
	return s, nil
}

// Summary is what one read of /proc/PID/status says about who a process is.
type Summary struct {
	Name  string // the command name (comm), at most 15 bytes
	State string // one letter: R, S, D, Z, …
	// PPid is the parent's PID in the reader's PID namespace; 0 when the
	// parent is outside it.
	PPid int
	// NSpid is the process's PID in each PID namespace it belongs to, the
	// reader's first and its own innermost last.
	NSpid []int
	// The privileges, as the kernel shows them: the capability sets
	// (bit N is capability N), no_new_privs, and the seccomp mode (0 none,
	// 1 strict, 2 filter). HasPrivileges is false where status had no
	// CapEff line (a fixture, or a kernel without capabilities).
	CapEff, CapPrm, CapBnd uint64
	NoNewPrivs             bool
	Seccomp                int
	HasPrivileges          bool
}

// Summary reads /proc/PID/status once. A process that is gone gives
// ErrExited.
func (r Root) Summary(pid int) (Summary, error) {
	p := r.path(pid, "status")
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Summary{}, fmt.Errorf("read %s: %w", p, ErrExited)
		}
		return Summary{}, err // a *fs.PathError, which names the file
	}
	defer f.Close()
	var s Summary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			s.Name = v
		case "State":
			s.State, _, _ = strings.Cut(v, " ")
		case "PPid":
			if s.PPid, err = strconv.Atoi(v); err != nil {
				return Summary{}, fmt.Errorf("parse %s: PPid %q: %w", p, v, err)
			}
		case "NSpid":
			for _, w := range strings.Fields(v) {
				n, err := strconv.Atoi(w)
				if err != nil {
					return Summary{}, fmt.Errorf("parse %s: NSpid %q: %w", p, v, err)
				}
				s.NSpid = append(s.NSpid, n)
			}
		case "CapEff", "CapPrm", "CapBnd":
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return Summary{}, fmt.Errorf("parse %s: %s %q: %w", p, k, v, err)
			}
			switch k {
			case "CapEff":
				s.CapEff, s.HasPrivileges = n, true
			case "CapPrm":
				s.CapPrm = n
			default:
				s.CapBnd = n
			}
		case "NoNewPrivs":
			s.NoNewPrivs = v == "1"
		case "Seccomp":
			s.Seccomp, _ = strconv.Atoi(v)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return Summary{}, fmt.Errorf("read %s: %w", p, ErrExited)
		}
		return Summary{}, fmt.Errorf("read %s: %w", p, err)
	}
	if s.NSpid == nil { // kernels before 4.1 have no NSpid line
		s.NSpid = []int{pid}
	}
	return s, nil
}

// Inner is the process's PID inside its own PID namespace (the last NSpid).
func (s Summary) Inner() int {
	if len(s.NSpid) == 0 {
		return 0
	}
	return s.NSpid[len(s.NSpid)-1]
}
