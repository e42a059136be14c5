// Package proc reads process facts from a procfs tree. The root is a
// parameter so tests can point it at a fixture tree.
package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Root is a procfs mount, normally "/proc".
type Root string

// Host is the host's own /proc.
const Host Root = "/proc"

func (r Root) path(pid int, name ...string) string {
	return filepath.Join(append([]string{string(r), strconv.Itoa(pid)}, name...)...)
}

// ErrExited means the process is gone (or never existed).
var ErrExited = errors.New("no such process")

// StartTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot. A PID plus its start time names one process for
// good, even after the PID is reused.
func (r Root) StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrInvalid) {
			return 0, fmt.Errorf("read %s: %w", r.path(pid, "stat"), ErrExited)
		}
		return 0, fmt.Errorf("read %s: %w", r.path(pid, "stat"), err)
	}
	// The command (field 2) may hold spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s: no command field", r.path(pid, "stat"))
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse %s: %d fields, want at least 22", r.path(pid, "stat"), len(f)+2)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: starttime %q: %w", r.path(pid, "stat"), f[19], err)
	}
	return st, nil
}

// Same reports whether pid still is the process that started at start
// (alive and not a zombie).
func (r Root) Same(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := r.StartTime(pid)
	if err != nil || st != start {
		return false
	}
	s, err := r.State(pid)
	return err == nil && s != "Z" && s != "X"
}

// State is the one-letter state of the process (R, S, D, Z, …).
func (r Root) State(pid int) (string, error) {
	b, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", r.path(pid, "stat"), ErrExited)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return "", fmt.Errorf("parse %s: no state field", r.path(pid, "stat"))
	}
	return string(b[i+2]), nil
}

// Status is /proc/PID/status as key/value pairs.
func (r Root) Status(pid int) (map[string]string, error) {
	f, err := os.Open(r.path(pid, "status"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", r.path(pid, "status"), ErrExited)
		}
		return nil, fmt.Errorf("read %s: %w", r.path(pid, "status"), err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// NSpid is the process's PID in each PID namespace it belongs to, from the
// host's outward to its own innermost (the NSpid line of status).
func (r Root) NSpid(pid int) ([]int, error) {
	st, err := r.Status(pid)
	if err != nil {
		return nil, err
	}
	line, ok := st["NSpid"]
	if !ok {
		return []int{pid}, nil
	}
	var out []int
	for _, f := range strings.Fields(line) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s NSpid %q: %w", r.path(pid, "status"), line, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// PIDs lists the numeric entries of the proc root.
func (r Root) PIDs() ([]int, error) {
	ents, err := os.ReadDir(string(r))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r, err)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// Cmdline is the process's argument vector joined by spaces, or its
// [comm] in brackets for kernel threads, as ps shows them.
func (r Root) Cmdline(pid int) (string, error) {
	b, err := os.ReadFile(r.path(pid, "cmdline"))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", r.path(pid, "cmdline"), ErrExited)
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) > 0 {
		return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), nil
	}
	c, err := os.ReadFile(r.path(pid, "comm"))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", r.path(pid, "comm"), ErrExited)
	}
	return "[" + strings.TrimSpace(string(c)) + "]", nil
}

// Group lists the processes of process group pgid whose root directory
// (/proc/PID/root) is below dir: a payload's leftovers, told apart from
// anything else that happens to share the group.
func (r Root) Group(pgid int, dir string) []int {
	if pgid <= 1 {
		return nil
	}
	pids, _ := r.PIDs()
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile(r.path(pid, "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		root, err := os.Readlink(r.path(pid, "root"))
		if err == nil && (root == dir || strings.HasPrefix(root, dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}

// Swaps reads <root>/swaps: how many swap areas are on, and their total
// size in KiB. Its first line is a header.
func (r Root) Swaps() (areas int, kib int64, err error) {
	p := filepath.Join(string(r), "swaps")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", p, err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) < 3 {
			continue // the header, or an empty line
		}
		areas++
		n, _ := strconv.ParseInt(f[2], 10, 64)
		kib += n
	}
	return areas, kib, nil
}

// SwapOn reports whether any swap area is on; false when it cannot tell.
func (r Root) SwapOn() bool {
	n, _, err := r.Swaps()
	return err == nil && n > 0
}
