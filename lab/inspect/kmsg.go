package inspect

import (
	"bytes"
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelLog follows the kernel log (/dev/kmsg) from the moment it is
// opened. The kernel logs every OOM kill with the cgroup's path
// ("oom-kill:…,oom_memcg=/underhood/box,…"), and that record outlives the
// cgroup: a runtime that removes the cgroup the moment its payload dies
// takes the oom_kill counter with it, but not the log line.
type kernelLog struct {
	fd      int
	partial []byte // a line cut at the end of a read (regular files only)
}

// openKernelLog opens path (normally /dev/kmsg) at its end; nil when it
// cannot be read (no CAP_SYSLOG, no such device).
func openKernelLog(path string) *kernelLog {
	if path == "" {
		return nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil
	}
	return &kernelLog{fd: fd}
}

// oomKills counts the OOM kills logged in the cgroup memcg (as
// /proc/PID/cgroup names it) since the log was opened or last read.
func (k *kernelLog) oomKills(memcg string) int {
	if k == nil {
		return 0
	}
	want := ",oom_memcg=" + memcg + ","
	n := 0
	buf := make([]byte, 8192)
	for {
		// /dev/kmsg gives one record per read and EAGAIN at the end; a
		// record overwritten before it was read gives EPIPE once.
		m, err := unix.Read(k.fd, buf)
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || m <= 0 {
			return n
		}
		data := append(k.partial, buf[:m]...)
		k.partial = nil
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				k.partial = append([]byte(nil), data...)
				break
			}
			line := string(data[:i])
			data = data[i+1:]
			// "PRI,SEQ,USEC,FLAGS;MESSAGE"; continuation lines start with a space.
			_, msg, ok := strings.Cut(line, ";")
			if ok && strings.HasPrefix(msg, "oom-kill:") && strings.Contains(msg+",", want) {
				n++
			}
		}
	}
}

func (k *kernelLog) close() {
	if k != nil {
		unix.Close(k.fd)
	}
}
