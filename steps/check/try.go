package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
)

// ProbeKind is something a check tries for real.
type ProbeKind int

const (
	// TryHello runs "Path echo Hello from BusyBox!".
	TryHello ProbeKind = iota
	// TryChroot runs /bin/busybox ls / chrooted into Path.
	TryChroot
	// TryProc mounts proc at Path/proc in a private mount namespace,
	// chroots into Path and runs busybox ps -A: the host's processes.
	TryProc
	// TryPIDNamespace does the same in a new PID namespace as well: ps -A
	// sees itself alone, as PID 1.
	TryPIDNamespace
	// TryCgroup creates a cgroup below Host's underhood parent with Limit,
	// reads the limit back and removes it again.
	TryCgroup
	// TryPing sends one ICMP echo to the address Path and waits for the
	// reply, from the checker's network namespace.
	TryPing
	// TrySkopeo runs skopeo inspect oci:Path (a layout directory and its
	// tag, DIR:TAG) and returns its JSON.
	TrySkopeo
	// TryPivot pivots into Path in a private mount namespace, as page 9
	// does by hand (bind it onto itself, pivot_root . ., unmount the old
	// root), mounts proc there and returns /proc/self/mountinfo as the
	// pivoted process sees it.
	TryPivot
)

// Probe is one thing to try.
type Probe struct {
	Kind ProbeKind
	Path string // the BusyBox (Hello) or the root filesystem
	// Busybox is the verified BusyBox that mounts proc and chroots on the
	// host's side (TryProc, TryPIDNamespace).
	Busybox string
	Host    cgroup.Host
	Limit   int64
}

const probeTimeout = 10 * time.Second

// Run performs a probe on this machine and returns what it printed. The
// namespace probes leave nothing behind: their mounts live in a mount
// namespace of their own, which goes when the probe exits.
func Run(p Probe) (string, error) {
	switch p.Kind {
	case TryHello:
		return busybox.Hello(p.Path)
	case TryChroot:
		return run(&syscall.SysProcAttr{Chroot: p.Path}, "/bin/busybox", "ls", "/")
	case TryProc, TryPIDNamespace:
		// A verified BusyBox mounts proc, then chroots: the same two steps
		// as the article's mount and chroot. Not the root's bin/busybox,
		// which would run as root on the host, outside the root.
		bb := p.Busybox
		if bb == "" {
			return "", errors.New("no verified BusyBox to mount proc with on the host")
		}
		// Unshareflags CLONE_NEWNS makes the Go runtime remount / private
		// first, so the proc mount cannot propagate back to the host.
		attr := &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
		if p.Kind == TryPIDNamespace {
			attr.Cloneflags = unix.CLONE_NEWPID
		}
		return run(attr, bb, "sh", "-c", `"$0" mount -t proc proc "$1/proc" && exec "$0" chroot "$1" /bin/busybox ps -A`, bb, p.Path)
	case TryPivot:
		if p.Busybox == "" {
			return "", errors.New("no verified BusyBox to pivot with on the host")
		}
		// The verified BusyBox binds and pivots. From then on a path names
		// what is in the new root: the host's BusyBox is out of reach, and
		// only the root's own /bin/busybox is there to run, pivoted. It
		// unmounts the old root, stacked on the new one by
		// pivot_root(".", ".") where "." still names it (pivot_root(2)).
		return run(&syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}, p.Busybox, "sh", "-c",
			`"$0" mount --bind "$1" "$1" && cd "$1" && "$0" pivot_root . . && `+
				`exec /bin/busybox sh -c 'busybox umount -l . && cd / && busybox mount -t proc proc /proc && busybox cat /proc/self/mountinfo'`, p.Busybox, p.Path)
	case TryCgroup:
		return makeCgroup(p.Host, p.Limit)
	case TryPing:
		return ping(p.Path)
	case TrySkopeo:
		return run(nil, "skopeo", "inspect", "oci:"+p.Path)
	}
	return "", fmt.Errorf("unknown probe %d", p.Kind)
}

func run(attr *syscall.SysProcAttr, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.SysProcAttr = attr
	c.Dir = "/"
	c.Env = []string{"PATH=/bin", "LC_ALL=C"}
	var out, stderr bytes.Buffer
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out.String(), fmt.Errorf("%w: %s", err, msg)
		}
		return out.String(), err
	}
	return out.String(), nil
}

// makeCgroup is what step 6 does first, undone at once.
func makeCgroup(h cgroup.Host, limit int64) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	m, err := cgroup.New(h, cgroup.DefaultParent, "check-"+hex.EncodeToString(b))
	if err != nil {
		return "", err
	}
	if err := m.Create(limit); err != nil {
		return "", err
	}
	file, got := limitFile(h.MemoryVersion), ""
	for _, f := range m.Files() {
		if f.Name == file {
			got = f.Value
		}
	}
	if err := m.Remove(); err != nil {
		return "", fmt.Errorf("made %s but cannot remove it: %w; remove it by hand: sudo rmdir %s", m.Path(), err, m.Path())
	}
	if got != fmt.Sprint(limit) {
		return "", fmt.Errorf("made %s, but its %s read %q, not %d", m.Path(), file, got, limit)
	}
	return fmt.Sprintf("made %s with %s = %d, and removed it", m.Path(), file, limit), nil
}

// limitFile is the memory limit's control file in cgroup version v.
func limitFile(v int) string {
	if v == 2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

var psLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+\S`)

// processes counts the process lines of ps output and returns the first PID.
func processes(ps string) (n int, first string) {
	m := psLine.FindAllStringSubmatch(ps, -1)
	if len(m) > 0 {
		first = m[0][1]
	}
	return len(m), first
}
