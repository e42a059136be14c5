package check

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot is a process whose root directory is the root filesystem, as the
// host's /proc shows it: a shell started by hand with chroot, unshare and
// pivot_root, or capsh, still open in another terminal.
type inRoot struct {
	PID    int
	Comm   string
	MntNS  string            // readlink of /proc/PID/ns/mnt: "mnt:[4026532176]"
	Status map[string]string // /proc/PID/status: "CapEff" → "0000000020000420"
}

// findInRoot lists the processes whose root is e.Rootfs, lowest PID first.
// It compares the directories themselves (device and inode), not paths:
// after pivot_root, /proc/PID/root reads "/" from the host, whatever the
// directory is.
func findInRoot(e Env) ([]inRoot, error) {
	want, err := os.Stat(e.Rootfs)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(e.ProcRoot)
	if err != nil {
		return nil, err
	}
	var out []inRoot
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fi, err := os.Stat(e.proc(d.Name(), "root"))
		if err != nil || !os.SameFile(fi, want) {
			continue
		}
		p := inRoot{PID: pid, Status: map[string]string{}}
		comm, _ := os.ReadFile(e.proc(d.Name(), "comm"))
		p.Comm = strings.TrimSpace(string(comm))
		p.MntNS, _ = os.Readlink(e.proc(d.Name(), "ns", "mnt"))
		st, _ := os.ReadFile(e.proc(d.Name(), "status"))
		for _, l := range strings.Split(string(st), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				p.Status[k] = strings.TrimSpace(v)
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b inRoot) int { return a.PID - b.PID })
	return out, nil
}

func (p inRoot) String() string { return fmt.Sprintf("PID %d (%s)", p.PID, p.Comm) }

// ClimbsToHost walks .. up from dir, as the chroot escape does, until a
// step leads nowhere new, and reports whether the walk passes the root
// directory of the process that walks (the host's, when the check runs on
// the host). Through /proc/PID/root the walk goes up the mount tree of PID's
// mount namespace: after pivot_root and the old root unmounted, the host's
// root is not in that tree, so no walk reaches it.
func ClimbsToHost(dir string) (bool, error) {
	var host unix.Stat_t
	if err := unix.Stat("/", &host); err != nil {
		return false, fmt.Errorf("stat /: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer func() { unix.Close(fd) }()
	var prev unix.Stat_t
	for i := 0; i < 4096; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return false, fmt.Errorf("walk up from %s: %w", dir, err)
		}
		if st.Dev == host.Dev && st.Ino == host.Ino {
			return true, nil
		}
		if i > 0 && st.Dev == prev.Dev && st.Ino == prev.Ino {
			return false, nil
		}
		prev = st
		up, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, fmt.Errorf("walk up from %s: %w", dir, err)
		}
		unix.Close(fd)
		fd = up
	}
	return false, nil
}
