// Package ns starts a process in new namespaces and turns it into the
// container's first process: underhood re-executes itself (/proc/self/exe)
// in a hidden init mode, the child sets up its mounts, hostname and root,
// then execs the payload so that the payload itself is PID 1.
//
// Parent and child talk over two pipes: the child waits on "go" until the
// parent has recorded it and put it in its cgroup, and reports a setup
// failure on "errors", which the exec closes (close-on-exec) when it works.
package ns

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg is argv[1] of the re-executed child.
const InitArg = "__underhood_init__"

// Flags say what the child sets up before it execs the payload.
type Flags uint

const (
	Private   Flags = 1 << iota // make / private, recursively (needs a new mount namespace)
	MountProc                   // mount a fresh proc at <root>/proc
	BindDev                     // bind-mount /dev/null, /dev/zero, /dev/urandom into <root>/dev
	Chroot                      // chroot(2) into root; otherwise only chdir there
	Hostname                    // set the UTS hostname
)

// Devices are the device nodes BindDev brings into the root.
var Devices = []string{"null", "zero", "urandom"}

// Config is one container start.
type Config struct {
	Self     string  // the executable to re-exec; "" means /proc/self/exe
	Clone    uintptr // CLONE_NEW* flags
	Flags    Flags
	Root     string   // the root filesystem (absolute)
	Hostname string   // with Hostname
	Argv     []string // the payload; Argv[0] is looked up in the payload's PATH
	Env      []string // the payload's environment
	// Terminal puts the payload in its own process group in the terminal's
	// foreground, so Ctrl-C reaches the shell and not underhood.
	Terminal bool
}

// Command builds the child's command. It does not start it; Start does.
func Command(c Config) *exec.Cmd {
	self := c.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	args := append([]string{"underhood-init", InitArg,
		strconv.FormatUint(uint64(c.Flags), 10), c.Root, c.Hostname, "--"}, c.Argv...)
	cmd := &exec.Cmd{Path: self, Args: args, Env: c.Env}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: c.Clone,
		// If underhood dies (even by kill -9), the payload goes too.
		Pdeathsig: syscall.SIGKILL,
	}
	if c.Terminal {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	return cmd
}

// Child is a started child waiting for the parent's go-ahead.
type Child struct {
	Cmd  *exec.Cmd
	goW  *os.File
	errR *os.File
}

// Start starts cmd (from Command) blocked before any setup. The caller
// records the PID, joins it to a cgroup, then calls Release.
func Start(cmd *exec.Cmd) (*Child, error) {
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start container: create pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		goR.Close()
		goW.Close()
		return nil, fmt.Errorf("start container: create pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{goR, errW} // fd 3 and 4 in the child
	err = cmd.Start()
	goR.Close()
	errW.Close()
	if err != nil {
		goW.Close()
		errR.Close()
		return nil, fmt.Errorf("start container: exec %s: %w", cmd.Path, err)
	}
	return &Child{Cmd: cmd, goW: goW, errR: errR}, nil
}

// Release lets the child set up and exec the payload, and returns the
// child's setup error, if any, once the exec has happened or failed.
func (c *Child) Release() error {
	_, werr := c.goW.Write([]byte{1})
	c.goW.Close()
	msg := make([]byte, 4096)
	n, _ := readFull(c.errR, msg)
	c.errR.Close()
	if n > 0 {
		return &SetupError{Msg: strings.TrimSpace(string(msg[:n]))}
	}
	if werr != nil {
		return fmt.Errorf("start container: release child %d: %w", c.Cmd.Process.Pid, werr)
	}
	return nil
}

// Abort ends a child that was never released.
func (c *Child) Abort() {
	c.goW.Close()
	c.errR.Close()
	_ = c.Cmd.Process.Kill()
	_ = c.Cmd.Wait()
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// SetupError is a failure inside the child before the payload ran.
type SetupError struct{ Msg string }

func (e *SetupError) Error() string { return e.Msg }

// Init is the child side. It never returns.
func Init() {
	runtime.LockOSThread()
	// One OS thread for the namespace-sensitive calls below; nothing else
	// runs in this process.
	fail := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		_, _ = unix.Write(4, []byte(msg))
		os.Exit(1)
	}
	var b [1]byte
	if n, _ := unix.Read(3, b[:]); n != 1 {
		os.Exit(1) // the parent gave up before releasing us
	}
	unix.Close(3)
	unix.CloseOnExec(4)

	a := os.Args
	if len(a) < 7 || a[5] != "--" {
		fail("container init: malformed arguments %q", a)
	}
	fl, err := strconv.ParseUint(a[2], 10, 32)
	if err != nil {
		fail("container init: flags %q: %v", a[2], err)
	}
	if err := setup(Flags(fl), a[3], a[4]); err != nil {
		fail("%v", err)
	}
	argv := a[6:]
	path, err := lookPath(argv[0])
	if err != nil {
		fail("%v", err)
	}
	// Nothing of underhood's may leak into the payload: every descriptor
	// above stderr, inherited or ours, closes on exec.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		closeFromProc()
	}
	err = unix.Exec(path, argv, os.Environ())
	if err == unix.EACCES {
		fail("exec %s: %v (is the work directory on a filesystem mounted noexec? use --workdir on another one)", path, err)
	}
	fail("exec %s: %v", path, err)
}

// lookPath finds the payload in the payload's PATH, as a shell would.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("exec %s: %v", name, unwrapPathErr(err))
		}
		return name, nil
	}
	path := os.Getenv("PATH")
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: not found in the container's PATH (%s); run BusyBox tools as 'busybox %s', or add the applet links with 'underhood rootfs --links'", name, path, name)
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func closeFromProc() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
