// Package ns starts a process in new namespaces and turns it into the
// container's first process: underhood starts its small init program
// (underhood-init, see InitProgram) or re-executes itself (/proc/self/exe)
// in a hidden init mode; the child sets up its mounts, hostname and root,
// then execs the payload so that the payload itself is PID 1.
//
// Parent and child talk over two pipes: the child waits on "go" until the
// parent has recorded it and put it in its cgroup, and reports a setup
// failure on "errors", which the exec closes (close-on-exec) when it works.
package ns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg is argv[1] of the container's first process. Its number is the
// version of the command line that initArgs reads: change it with that, so
// that an underhood-init left from an older build says so instead of
// misreading it.
const InitArg = "__underhood_init_2__"

// InitArgPrefix starts every version of InitArg.
const InitArgPrefix = "__underhood_init"

// Flags say what the child sets up before it execs the payload.
type Flags uint

const (
	Private        Flags = 1 << iota // make / private, recursively (needs a new mount namespace)
	MountProc                        // mount a fresh proc at <root>/proc
	BindDev                          // bind-mount /dev/null, /dev/zero, /dev/urandom into <root>/dev
	Chroot                           // chroot(2) into root; otherwise only chdir there
	Hostname                         // set the UTS hostname
	PivotRoot                        // pivot_root(2) into root instead of chroot; the old root unmounted
	MaskPaths                        // hide and freeze the host's parts of /proc and /sys (after MountProc)
	DropPrivileges                   // last before the exec: runc's capabilities, no_new_privs, seccomp
	CgroupNS                         // a cgroup namespace of its own, made once the child is in its cgroup
)

// Devices are the device nodes BindDev brings into the root.
var Devices = []string{"null", "zero", "urandom"}

// Config is one container start.
type Config struct {
	Self     string  // the container's first program; "" means InitProgram or /proc/self/exe
	Clone    uintptr // CLONE_NEW* flags
	Flags    Flags
	Root     string   // the root filesystem (absolute)
	Hostname string   // with Hostname
	Argv     []string // the payload; Argv[0] is looked up in the payload's PATH
	Env      []string // the payload's environment
	// Users and Group map the container's root (uid and gid 0) to these
	// host IDs in a user namespace of its own (with CLONE_NEWUSER in Clone).
	Users, Group int
	// Terminal puts the payload in its own process group in the terminal's
	// foreground, so Ctrl-C reaches the shell and not underhood.
	Terminal bool
	// SameGroup keeps the payload in underhood's process group (a command
	// attached to the terminal: Ctrl-C reaches both, and underhood makes
	// sure it ends). Otherwise the payload leads a group of its own.
	SameGroup bool
}

// Command builds the child's command. It does not start it; Start does.
func Command(c Config) *exec.Cmd {
	self := c.Self
	switch {
	case self != "":
	case c.Clone&syscall.CLONE_NEWUSER != 0:
		// In a user namespace the exec runs as the mapped user, who may not
		// walk the directories to underhood-init; /proc/self/exe leads to
		// the file itself, whatever its directory.
		self = selfExe
	default:
		self = initPath()
	}
	args := append([]string{"underhood-init", InitArg,
		strconv.FormatUint(uint64(c.Flags), 10), c.Root, c.Hostname, "--"}, c.Argv...)
	cmd := &exec.Cmd{Path: self, Args: args, Env: c.Env}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: c.Clone,
		// If underhood dies (even by kill -9), the payload goes too.
		Pdeathsig: syscall.SIGKILL,
		// The payload leads a process group of its own: what it starts stays
		// in it, so that cleanup can find it even after underhood is gone.
		Setpgid: !c.SameGroup,
	}
	if c.Clone&syscall.CLONE_NEWUSER != 0 {
		// The map must be written after the clone and before the exec: a
		// process that execs while its uid is unmapped loses every
		// capability in the new namespace. Only Go's runtime can act in
		// that window (runc does it in C before the Go runtime starts);
		// it writes these to /proc/PID/uid_map and gid_map, then the child
		// becomes uid and gid 0 of the namespace.
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: c.Users, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: c.Group, Size: 1}}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	if c.Terminal {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	return cmd
}

// Child is a started child waiting for the parent's go-ahead.
type Child struct {
	Cmd      *exec.Cmd
	goW      *os.File
	errR     *os.File
	setUp    bool  // SetUp was called
	setUpErr error // and its write failed
}

// Start starts cmd (from Command) blocked before any setup. The caller
// records the PID and makes the root, calls SetUp when the root is ready,
// joins the child to a cgroup, then calls Release.
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
		if cmd.SysProcAttr != nil && cmd.SysProcAttr.Cloneflags&syscall.CLONE_NEWUSER != 0 {
			if why := UserNSRefused(""); why != "" {
				return nil, fmt.Errorf("start container in a user namespace: %w: %s", err, why)
			}
		}
		return nil, fmt.Errorf("start container: exec %s: %w", cmd.Path, err)
	}
	return &Child{Cmd: cmd, goW: goW, errR: errR}, nil
}

// UserNSRefused says which setting of the kernel stops user namespaces
// (or the writing of their uid_map) here, with the fix, or "" when none
// does. procSys is /proc/sys ("" for it).
func UserNSRefused(procSys string) string { return refused(procSys, os.Geteuid() != 0) }

func refused(procSys string, unprivileged bool) string {
	if procSys == "" {
		procSys = "/proc/sys"
	}
	read := func(f string) string {
		b, err := os.ReadFile(procSys + "/" + f)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	switch {
	case read("user/max_user_namespaces") == "0":
		return "user.max_user_namespaces is 0, so nobody may make one: sudo sysctl user.max_user_namespaces=15000"
	case unprivileged && read("kernel/unprivileged_userns_clone") == "0":
		return "kernel.unprivileged_userns_clone is 0 (Debian's switch for users without root): sudo sysctl kernel.unprivileged_userns_clone=1"
	case unprivileged && read("kernel/apparmor_restrict_unprivileged_userns") == "1":
		return "AppArmor refuses user namespaces to unconfined programs (Ubuntu 24.04's kernel.apparmor_restrict_unprivileged_userns=1), which shows as 'write uid_map: operation not permitted': sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for underhood"
	}
	return ""
}

// ErrDied means the child was gone before it could exec the payload.
var ErrDied = errors.New("the container's first process died before the payload started")

// SetUp lets the child make its mounts, hostname and root while the
// parent still works (joining a v1 cgroup waits 8-25 ms in the kernel):
// the root must be ready. The child then waits again, before the exec,
// for Release.
func (c *Child) SetUp() {
	if !c.setUp {
		c.setUp = true
		_, c.setUpErr = c.goW.Write([]byte{1})
	}
}

// Why explains err, a failure of the parent's while the child was setting
// up, by the child's own failure when it has one (the parent's join of a
// child that has exited fails too, less clearly).
func (c *Child) Why(err error) error {
	if !c.setUp {
		return err
	}
	c.goW.Close()
	msg := make([]byte, 4096)
	if n, _ := readFull(c.errR, msg); n > 0 {
		return parseSetupError(string(msg[:n]))
	}
	return err
}

// Release lets the child set up (unless SetUp did) and exec the payload,
// and returns the child's setup error, if any, once the exec has happened
// or failed.
func (c *Child) Release() error {
	c.SetUp()
	_, werr := c.goW.Write([]byte{1})
	if werr == nil {
		werr = c.setUpErr
	}
	c.goW.Close()
	msg := make([]byte, 4096)
	n, _ := readFull(c.errR, msg)
	c.errR.Close()
	if n > 0 {
		return parseSetupError(string(msg[:n]))
	}
	if werr != nil {
		return fmt.Errorf("start container: child %d: %w", c.Cmd.Process.Pid, ErrDied)
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

// SetupError is a failure inside the child before the payload ran. Code
// is the exit status a shell would give: 127 for a command not found, 126
// for one that cannot be executed, 1 for anything else.
type SetupError struct {
	Msg  string
	Code int
}

func (e *SetupError) Error() string { return e.Msg }

// The child reports "CODE:message" on the error pipe.
func parseSetupError(s string) *SetupError {
	code, msg, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.Atoi(code)
	if !ok || err != nil {
		return &SetupError{Msg: strings.TrimSpace(s), Code: 1}
	}
	return &SetupError{Msg: msg, Code: n}
}

// Init is the child side. It never returns.
func Init() {
	// One OS thread for the namespace-sensitive calls below; nothing else
	// runs in this process.
	runtime.LockOSThread()
	// Until the exec, the parent decides what a signal means (it aborts a
	// start it was told to stop). Caught signals go back to their default
	// at exec, so the payload starts with none of these caught or ignored,
	// not even SIGTTOU/SIGTTIN, which underhood ignores itself.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
		syscall.SIGTTOU, syscall.SIGTTIN)
	waitForParent()
	closeInherited()
	fl, root, hostname, argv := initArgs()
	if err := setup(fl, root, hostname); err != nil {
		initFail(1, "%v", err)
	}
	// The mounts and the root are made; now wait until the parent has put
	// this process in its cgroup.
	waitForParent()
	unix.Close(3)
	if fl&CgroupNS != 0 {
		// Now, not at clone: the namespace's root is the cgroup the child
		// is in when it is made, and on cgroup v1 the parent moves the
		// child into its cgroup only after the clone.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			initFail(1, "unshare(CLONE_NEWCGROUP): %v", err)
		}
	}
	path, err := lookPath(argv[0])
	if err != nil {
		initFail(exitCodeOf(err), "%v", err)
	}
	if fl&DropPrivileges != 0 {
		if err := dropPrivileges(); err != nil {
			initFail(1, "%v", err)
		}
	}
	execPayload(path, argv)
}

// initFail tells the parent why the start failed (on fd 4), and exits.
func initFail(code int, format string, a ...any) {
	msg := fmt.Sprintf("%d:%s", code, fmt.Sprintf(format, a...))
	_, _ = unix.Write(4, []byte(msg))
	os.Exit(code)
}

// waitForParent blocks until the parent writes one byte on fd 3: the
// first when the run's root is ready (set up), the second when the
// cgroup is joined (exec).
func waitForParent() {
	var b [1]byte
	if n, _ := unix.Read(3, b[:]); n != 1 {
		os.Exit(1) // the parent gave up before releasing us
	}
}

// closeInherited: nothing of underhood's may leak into the payload; every
// descriptor above stderr, inherited or ours, closes on exec. Done before
// the chroot, so the fallback still sees the host's /proc.
func closeInherited() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		closeFromProc()
	}
}

// initArgs reads what Command put on the child's command line:
// InitArg FLAGS ROOT HOSTNAME -- ARGV...
func initArgs() (fl Flags, root, hostname string, argv []string) {
	a := os.Args
	if len(a) < 7 || a[5] != "--" {
		initFail(1, "container init: malformed arguments %q", a)
	}
	n, err := strconv.ParseUint(a[2], 10, 32)
	if err != nil {
		initFail(1, "container init: flags %q: %v", a[2], err)
	}
	return Flags(n), a[3], a[4], a[6:]
}

// execPayload becomes the payload, or says why the kernel refused it in
// the shell's terms (126 cannot execute, 127 not found).
func execPayload(path string, argv []string) {
	err := unix.Exec(path, argv, os.Environ())
	switch err {
	case unix.EACCES:
		var st unix.Statfs_t
		if unix.Statfs(path, &st) == nil && st.Flags&unix.ST_NOEXEC != 0 {
			initFail(126, "exec %s: the filesystem it is on is mounted noexec: use --workdir on another one", path)
		}
		initFail(126, "exec %s: permission denied", path)
	case unix.ENOENT:
		initFail(127, "exec %s: the file is there, but the program it needs to start (the interpreter named after #! or the ELF loader) is not in the container", path)
	case unix.ENOEXEC:
		initFail(126, "exec %s: not a program this kernel can run (a script needs a #! line)", path)
	}
	initFail(1, "exec %s: %v", path, err)
}

// notFound and notExecutable carry a shell's exit codes for lookPath.
type notFound struct{ error }
type notExecutable struct{ error }

func exitCodeOf(err error) int {
	switch err.(type) {
	case notFound:
		return 127
	case notExecutable:
		return 126
	}
	return 1
}

// lookPath finds the payload in the payload's PATH, as a shell would.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		st, err := os.Stat(name)
		switch {
		case err != nil:
			return "", notFound{fmt.Errorf("exec %s: %v", name, unwrapPathErr(err))}
		case st.IsDir():
			return "", notExecutable{fmt.Errorf("exec %s: is a directory, not a program", name)}
		case st.Mode()&0o111 == 0:
			return "", notExecutable{fmt.Errorf("exec %s: not executable (chmod +x it)", name)}
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
	return "", notFound{fmt.Errorf("exec %s: not found in the container's PATH (%s); run BusyBox tools as 'busybox %s', or add the applet links with 'underhood rootfs --links'", name, path, name)}
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
