// Package mount performs and undoes the lab's mounts, and reads mountinfo.
package mount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Error is a failed mount(2) or umount2(2), naming what was attempted.
type Error struct {
	Op     string // "mount" or "unmount"
	Source string
	Target string
	FSType string
	Flags  uintptr
	Err    error
}

func (e *Error) Error() string {
	if e.Op == "unmount" {
		return fmt.Sprintf("unmount %s: %v", e.Target, e.Err)
	}
	what := e.Source
	if e.FSType != "" && e.Flags&unix.MS_BIND == 0 {
		what = e.FSType
	}
	if e.Flags&unix.MS_BIND != 0 {
		return fmt.Sprintf("bind-mount %s on %s: %v", e.Source, e.Target, e.Err)
	}
	if e.Flags&(unix.MS_PRIVATE|unix.MS_SLAVE|unix.MS_SHARED) != 0 {
		return fmt.Sprintf("make %s private: %v", e.Target, e.Err)
	}
	return fmt.Sprintf("mount %s on %s: %v", what, e.Target, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Mount is mount(2) with an error that names the attempt.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &Error{Op: "mount", Source: source, Target: target, FSType: fstype, Flags: flags, Err: err}
	}
	return nil
}

// Unmount undoes a mount. A busy mount is detached lazily; a path that is
// not a mount point (any more) is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
			return &Error{Op: "unmount", Target: target, Err: err}
		}
		return nil
	}
	return &Error{Op: "unmount", Target: target, Err: err}
}

// Info is one line of /proc/PID/mountinfo.
type Info struct {
	ID, Parent  int
	Root        string // the mounted directory inside its filesystem
	Mountpoint  string
	Optional    []string // e.g. "shared:1", "master:2"
	FSType      string
	Source      string
	Options     string
	SuperOption string
}

// Propagation is "shared", "slave" or "private", from the optional fields.
func (i Info) Propagation() string {
	for _, o := range i.Optional {
		switch {
		case strings.HasPrefix(o, "shared:"):
			return "shared"
		case strings.HasPrefix(o, "master:"):
			return "slave"
		}
	}
	return "private"
}

// Read parses a mountinfo file (e.g. /proc/self/mountinfo).
func Read(path string) ([]Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var out []Info
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		i, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		out = append(out, i)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

func parseLine(line string) (Info, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || sep+3 > len(f) {
		return Info{}, fmt.Errorf("malformed line %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Info{}, fmt.Errorf("malformed ids in %q", line)
	}
	i := Info{ID: id, Parent: parent, Root: unescape(f[3]), Mountpoint: unescape(f[4]),
		Options: f[5], Optional: f[6:sep], FSType: f[sep+1], Source: unescape(f[sep+2])}
	if sep+3 < len(f) {
		i.SuperOption = f[sep+3]
	}
	return i, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space, …).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Under returns the mounts at or below dir, deepest first (the order to
// unmount them in).
func Under(infos []Info, dir string) []Info {
	dir = filepath.Clean(dir)
	var out []Info
	for _, i := range infos {
		if i.Mountpoint == dir || strings.HasPrefix(i.Mountpoint, dir+"/") {
			out = append(out, i)
		}
	}
	for a := 1; a < len(out); a++ {
		for b := a; b > 0 && len(out[b].Mountpoint) > len(out[b-1].Mountpoint); b-- {
			out[b], out[b-1] = out[b-1], out[b]
		}
	}
	return out
}
