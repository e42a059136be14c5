package netns

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// A network namespace is per thread: setns(2) moves only the calling
// thread. Do runs f on a thread of its own, locked, moved into ns and moved
// back; a thread that cannot be moved back is never unlocked, so Go ends it
// with its goroutine rather than reuse it. Threads Go starts meanwhile come
// from its template thread, not from this one.
func Do(ns *os.File, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns(%s, CLONE_NEWNET): %w", ns.Name(), err)
			return
		}
		err = f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// New makes a network namespace with nothing in it but a loopback that is
// down, as clone(CLONE_NEWNET) gives a container, and returns it open: it
// lives as long as the file, or a process in it. Closing the file with
// nothing else in it removes it, and every interface in it.
func New() (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	done := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- res{err: fmt.Errorf("open this thread's network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- res{err: fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			err = fmt.Errorf("open the new network namespace: %w", err)
		}
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- res{f, err}
	}()
	r := <-done
	return r.f, r.err
}

// Of opens the network namespace of process pid.
func Of(pid int) (*os.File, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open the network namespace of %d: %w", pid, err)
	}
	return f, nil
}

// ID is a namespace's identity, as ls -l /proc/PID/ns/net shows it:
// net:[4026531840].
func ID(ns *os.File) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}

// Self is the caller's own network namespace (its thread's).
func Self() (*os.File, error) { return os.Open("/proc/thread-self/ns/net") }
