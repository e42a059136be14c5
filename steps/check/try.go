package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
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
	// TryPivot makes the root at Path a mount point in a mount namespace of
	// its own, pivot_roots into it with its sys as put_old, unmounts that,
	// and lists / after cd ../../..: only the root's own entries.
	TryPivot
	// TryLimits creates a cgroup below Host's underhood parent with a task
	// and a CPU limit, reads them back and removes it again.
	TryLimits
)

// Probe is one thing to try.
type Probe struct {
	Kind  ProbeKind
	Path  string // the BusyBox (Hello) or the root filesystem
	Host  cgroup.Host
	Limit int64
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
		// The host's view of the root's BusyBox mounts proc, then chroots:
		// the same two steps as the article's mount and chroot.
		bb := filepath.Join(p.Path, "bin", "busybox")
		// Unshareflags CLONE_NEWNS makes the Go runtime remount / private
		// first, so the proc mount cannot propagate back to the host.
		attr := &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
		if p.Kind == TryPIDNamespace {
			attr.Cloneflags = unix.CLONE_NEWPID
		}
		return run(attr, bb, "sh", "-c", `"$0" mount -t proc proc "$1/proc" && exec "$0" chroot "$1" /bin/busybox ps -A`, bb, p.Path)
	case TryCgroup:
		return makeCgroup(p.Host, p.Limit)
	case TryPivot:
		// The Go runtime remounts / private first (Unshareflags
		// CLONE_NEWNS); sys is an empty directory of the root, so put_old
		// needs nothing written into it.
		bb := filepath.Join(p.Path, "bin", "busybox")
		return run(&syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}, bb, "sh", "-c",
			`"$0" mount --rbind "$1" "$1" && cd "$1" && "$0" pivot_root . sys && exec /bin/busybox sh -c '/bin/busybox umount -l /sys && cd ../../.. && /bin/busybox ls /'`, bb, p.Path)
	case TryLimits:
		return makeLimits(p.Host)
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
