package guide

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
)

// runner runs blocks in one fresh lab.
type runner struct {
	binary string
	top    string // the runner's own files: shims, fifos
	lab    string // $UNDERHOOD_HOME, shown as /var/lib/underhood
	home   string // $HOME, shown as /home/you
	repo   string // this repository, cloned as ~/underhood
	env    []string
	token  string
	host   cgroup.Host
	// handMade is the article's cgroup, removed at the end if the guide
	// left it (a block failed half-way).
	handMade string
	// private is a cgroup of the runner's own, bind-mounted over
	// underhood's parent cgroup in each shell's mount namespace: the
	// guide's runs, checks and inspections see only their own cgroups, not
	// those of tests or labs running beside them. Its name is as long as
	// "underhood", so that it can be shown as underhood.
	private, parent string
	// scripts is an empty directory of the runner's, bind-mounted over
	// /tmp/container in each shell, for the same reason: the article's
	// script (and anyone running it on this machine) builds containers there.
	scripts       string
	madeScriptDir bool
	timeout       time.Duration
	shell         *pageShell // the page's shell, once a block has run
	blocks        int
	fifos         int
}

const (
	shownLab  = "/var/lib/underhood"
	shownHome = "/home/you"
	scriptDir = "/tmp/container" // the article's script's
)

// sameLength makes a new directory whose path is as long as shown.
func sameLength(shown, prefix string) (string, error) {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := len(shown) - len(prefix)
	if n < 2 {
		return "", fmt.Errorf("no room for a temporary path as long as %s", shown)
	}
	for range 100 {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = chars[int(b[i])%len(chars)]
		}
		p := prefix + string(b)
		if err := os.Mkdir(p, 0o755); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free temporary path like %s", prefix)
}

func newRunner(binary, repo string) (*runner, error) {
	if os.Geteuid() != 0 {
		return nil, ui.Usagef("the guide's commands need root: run 'sudo make docs'")
	}
	top, err := os.MkdirTemp("", "underhood-docs-")
	if err != nil {
		return nil, err
	}
	r := &runner{binary: binary, top: top, timeout: 60 * time.Second}
	fail := func(err error) (*runner, error) { r.Close(); return nil, err }
	if r.lab, err = sameLength(shownLab, "/tmp/uhd"); err != nil {
		return fail(err)
	}
	if err := os.Remove(r.lab); err != nil { // the guide's first step makes it
		return fail(err)
	}
	if r.home, err = sameLength(shownHome, "/tmp/"); err != nil {
		return fail(err)
	}
	// The guide has the reader clone the repository as ~/underhood.
	r.repo = repo
	if err := os.Symlink(repo, filepath.Join(r.home, "underhood")); err != nil {
		return fail(err)
	}
	shim := filepath.Join(top, "bin")
	if err := os.Mkdir(shim, 0o755); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(shim, "sudo"), []byte("#!/bin/sh\n# the runner is root already\nexec \"$@\"\n"), 0o755); err != nil {
		return fail(err)
	}
	if err := os.Symlink(binary, filepath.Join(shim, "underhood")); err != nil {
		return fail(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	r.token = hex.EncodeToString(b)
	r.env = []string{"PATH=" + shim + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + r.home, "UNDERHOOD_HOME=" + r.lab, "NO_COLOR=1", "TERM=dumb", "LC_ALL=C", "USER=root", "LOGNAME=root",
		// What the guide shows is what an 80-column terminal shows, with
		// the hints of the default work directory.
		"COLUMNS=80", "UNDERHOOD_PLAIN_HINTS=1"}
	r.scripts = filepath.Join(top, "container")
	if err := os.Mkdir(r.scripts, 0o755); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(scriptDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(scriptDir, 0o755); err != nil {
			return fail(err)
		}
		r.madeScriptDir = true
	}
	r.host, _ = cgroup.Detect("/sys/fs/cgroup")
	if r.host.MemoryRoot != "" {
		r.handMade = filepath.Join(r.host.MemoryRoot, "busybox")
		if _, err := os.Stat(r.handMade); err == nil {
			return fail(fmt.Errorf("the cgroup %s exists already, and the guide makes it in step 6: remove it (sudo rmdir %s) and run again", r.handMade, r.handMade))
		}
		r.parent = filepath.Join(r.host.MemoryRoot, cgroup.DefaultParent)
		if err := os.Mkdir(r.parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
		if r.private, err = sameLength(r.parent, filepath.Join(r.host.MemoryRoot, "uhd")); err != nil {
			return fail(err)
		}
	}
	return r, nil
}

// Close undoes whatever the blocks left: runs, mounts, the hand-made
// cgroup, the temporary directories.
func (r *runner) Close() {
	// Not 'underhood cleanup --all': the runs' journals name cgroups as
	// the shells saw them, through the bind mount; out here those paths
	// are other people's. The runs' processes go with their process groups
	// and cgroups, their directories with the lab.
	r.endPage()
	infos, _ := mount.Read("/proc/self/mountinfo")
	for _, dir := range []string{r.lab, r.home, r.top} {
		if dir == "" {
			continue
		}
		for _, m := range mount.Under(infos, dir) {
			_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		}
	}
	if r.handMade != "" {
		if b, err := os.ReadFile(filepath.Join(r.handMade, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			for i := 0; i < 50 && os.Remove(r.handMade) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	if r.private != "" {
		removeCgroupTree(r.private)
	}
	if r.madeScriptDir {
		_ = os.Remove(scriptDir) // only if empty: someone may have started using it
	}
	for _, dir := range []string{r.lab, r.home, r.top} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
}

// removeCgroupTree ends the processes in the cgroup dir and below, and
// removes the cgroups, deepest first.
func removeCgroupTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50; try++ {
			if b, err := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			if err := unix.Rmdir(dirs[i]); err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// skip says why a block cannot run on this machine, or "".
func (r *runner) skip(b *block) string {
	switch {
	case b.tags["v1"] && r.host.MemoryVersion != 1:
		return "needs a cgroup v1 memory controller"
	case b.tags["v2"] && r.host.MemoryVersion != 2:
		return "needs a cgroup v2 memory controller"
	case b.tags["noswap"] && proc.Host.SwapOn():
		return "needs swap off (its output says whether swap is on)"
	}
	return ""
}

// output collects what the shells of a block print, all on one pipe.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf.Write(p)
	o.mu.Unlock()
	select {
	case o.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// sepFunc prints a line's separator and keeps $? as it was, so that a
// following "echo $?" sees the user's command.
const sepFunc = `__uh() { __s=$?; echo "@@uh-$1-$2-$__s@@"; return $__s; }`

// pageShell is the one bash a page runs in, as a reader works through a
// page in one terminal: a directory changed, a variable set or a job left
// in the background by one block is there for the next.
type pageShell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   output
	pos   int // how much of out the blocks so far have taken
}

func (r *runner) startShell() (*pageShell, error) {
	p := &pageShell{}
	p.out.more = make(chan struct{}, 1)
	sh := exec.Command("bash", "--noprofile", "--norc")
	sh.Dir, sh.Env = r.home, r.env
	sh.Stdout, sh.Stderr = &p.out, &p.out
	// Its own process group, to end what it leaves in the background; its
	// own mount namespace (made private by the Go runtime), for the bind
	// mount of the private cgroup.
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: unix.CLONE_NEWNS}
	// A job left in the background keeps the output open: stop reading
	// shortly after the shell itself has gone.
	sh.WaitDelay = 200 * time.Millisecond
	stdin, err := sh.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := sh.Start(); err != nil {
		return nil, err
	}
	p.cmd, p.stdin = sh, stdin
	if r.private != "" {
		fmt.Fprintf(stdin, "mount --bind %s %s || exit 97\n", r.private, r.parent)
	}
	fmt.Fprintf(stdin, "mount --bind %s %s || exit 97\n", r.scripts, scriptDir)
	fmt.Fprintln(stdin, sepFunc)
	return p, nil
}

// endPage ends the page's shell and whatever it left running: the whole
// process group, killed while the shell (its leader) is still alive, so
// that the group cannot be anybody else's.
func (r *runner) endPage() {
	p := r.shell
	if p == nil {
		return
	}
	r.shell = nil
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.stdin.Close()
	_ = p.cmd.Wait()
}

// run runs a block in the page's shell and returns its content as the
// page should have it.
func (r *runner) run(b *block) (string, error) {
	if r.shell == nil {
		sh, err := r.startShell()
		if err != nil {
			return "", err
		}
		r.shell = sh
	}
	sh := r.shell
	stdin := sh.stdin
	where := fmt.Sprintf("%s:%d", b.page, b.line)
	r.blocks++
	var fifo *os.File
	var outputs []string
	// The separator with its line end: echo prints them at once, but the
	// reader may see the line before its end (a pseudo-terminal's "\r\n"
	// comes later), and the next output would then begin with it: a blank
	// line and the prompt twice in the page (seen in pages 6 and 7).
	sepRE := regexp.MustCompile(`@@uh-` + r.token + `-(\d+)-(\d+)@@\r?\n`)
	sessionEnd := -1 // the id of the last line of the session running now
	for i, l := range b.lines {
		id := r.blocks*1000 + i
		sep := fmt.Sprintf("__uh %s %d", r.token, id)
		nextInner := i+1 < len(b.lines) && !b.lines[i+1].host()
		switch {
		case l.host() && nextInner:
			// A shell that reads the lines after this one. The host shell
			// gets the separator of the session's last line now: it reads
			// it only once the session has ended, early or not.
			last := i + 1
			for last+1 < len(b.lines) && !b.lines[last+1].host() {
				last++
			}
			sessionEnd = r.blocks*1000 + last
			r.fifos++
			path := filepath.Join(r.top, fmt.Sprintf("fifo-%d", r.fifos))
			if err := unix.Mkfifo(path, 0o600); err != nil {
				return "", err
			}
			// On a terminal, as the reader runs it: script(1) gives the
			// session a pseudo-terminal, so the shell in it is interactive
			// (its banner, its real prompts), and tables fit its COLUMNS.
			// -E never: no echo of what the runner types; transcript puts
			// each line after the prompt it was typed at.
			fmt.Fprintf(stdin, "script -qfe -E never -c %s /dev/null <%s\n__uh %s %d\n", shellQuote(l.cmd), path, r.token, sessionEnd)
			opened := make(chan *os.File, 1)
			go func() {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err == nil {
					opened <- f
				}
			}()
			select {
			case fifo = <-opened:
			case <-time.After(r.timeout):
				return "", fmt.Errorf("%s: %q did not start reading its input", where, l.cmd)
			}
			fmt.Fprintf(fifo, "%s\n%s\n", sepFunc, sep)
		case !l.host() && !nextInner:
			fmt.Fprintf(fifo, "%s\n", l.cmd)
			_ = fifo.Close()
			fifo = nil
		case !l.host():
			fmt.Fprintf(fifo, "%s\n%s\n", l.cmd, sep)
		default:
			fmt.Fprintf(stdin, "%s\n%s\n", l.cmd, sep)
		}
		text, got, status, err := r.waitSep(&sh.out, sepRE, sh.pos, id, sessionEnd)
		if err != nil {
			return "", fmt.Errorf("%s: %q: %w\n%s", where, l.cmd, err, sh.out.String()[sh.pos:])
		}
		if got != id {
			if fifo != nil {
				_ = fifo.Close()
			}
			return "", fmt.Errorf("%s: %q: the shell it runs in ended before its commands did (exit status %d):\n%s", where, l.cmd, status, text.s)
		}
		if id == sessionEnd {
			sessionEnd = -1
		}
		sh.pos = text.next
		if !b.tags["error"] {
			if bad := didNotRun(l, status); bad != "" {
				return "", fmt.Errorf("%s: %q %s (exit status %d):\n%s", where, l.cmd, bad, status, text.s)
			}
		}
		outputs = append(outputs, text.s)
	}
	return r.transcript(b.lines, outputs), nil
}

// transcript is the block as the page shows it: each line typed at its
// prompt, then its output. In a session on a pseudo-terminal the shell
// prints its own prompts (and no echo of what was typed): the output of
// the line that started it ends with the prompt twice (before the
// separator function's line and before the first separator), that of an
// inner line starts with the prompt it was typed at and ends with the next.
func (r *runner) transcript(lines []typedLine, outputs []string) string {
	var c strings.Builder
	c.WriteString("```console\n")
	prompt := ""
	for i, l := range lines {
		out := outputs[i]
		shown := l.prompt
		nextInner := i+1 < len(lines) && !lines[i+1].host()
		switch {
		case l.host() && nextInner:
			out = strings.ReplaceAll(out, "\r\n", "\n")
			var twice string
			out, twice = cutPrompt(out)
			if h := len(twice) / 2; h > 0 && twice[:h] == twice[h:] {
				prompt = twice[:h]
			}
		case !l.host():
			out = strings.ReplaceAll(out, "\r\n", "\n")
			if prompt != "" {
				shown = prompt
				out = strings.TrimPrefix(out, prompt)
			}
			if nextInner {
				if out, prompt = cutPrompt(out); prompt == "" {
					prompt = lines[i+1].prompt
				}
			}
		}
		c.WriteString(shown + l.cmd + "\n")
		c.WriteString(r.render(out))
	}
	c.WriteString("```\n")
	return c.String()
}

// cutPrompt splits s after its last newline: what a shell printed, and
// the prompt it waits at.
func cutPrompt(s string) (text, prompt string) {
	i := strings.LastIndex(s, "\n")
	return s[:i+1], s[i+1:]
}

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

type sepText struct {
	s    string
	next int
}

// waitSep waits until the separator of line id, or that of end (the end
// of the session the line is in, -1 for none), shows up after pos.
func (r *runner) waitSep(out *output, sepRE *regexp.Regexp, pos, id, end int) (sepText, int, int, error) {
	deadline := time.After(r.timeout)
	for {
		s := out.String()
		for _, m := range sepRE.FindAllStringSubmatchIndex(s[pos:], -1) {
			if n, _ := strconv.Atoi(s[pos+m[2] : pos+m[3]]); n == id || n == end {
				status, _ := strconv.Atoi(s[pos+m[4] : pos+m[5]])
				return sepText{s: s[pos : pos+m[0]], next: pos + m[1]}, n, status, nil
			}
		}
		select {
		case <-out.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return sepText{}, 0, 0, fmt.Errorf("no end after %v: a command waits for input, or hangs", r.timeout)
		}
	}
}

// didNotRun tells a command that could not run from one that ran and
// failed: not found, not executable, or underhood's usage error.
func didNotRun(l typedLine, status int) string {
	switch {
	case status == 127:
		return "was not found"
	case status == 126:
		return "could not be executed"
	case status == 2 && regexp.MustCompile(`^(sudo )?underhood\b`).MatchString(l.cmd):
		return "was refused as a usage error"
	}
	return ""
}

var killedRE = regexp.MustCompile(`(?m)^bash:(?: line \d+:)? +\d+ Killed .*$`)

// render turns a command's raw output into what the page shows: the lab's
// real-looking paths, and "Killed" as an interactive shell says it.
func (r *runner) render(s string) string {
	// The lab is shown as the default work directory, which needs no
	// --workdir in a hint.
	s = strings.ReplaceAll(s, "underhood --workdir "+r.lab+" ", "underhood ")
	s = strings.ReplaceAll(s, r.lab, shownLab)
	if h, err := os.Hostname(); err == nil && h != "" {
		// The escape reads the host's /etc/hostname, and prints it quoted.
		s = strings.ReplaceAll(s, strconv.Quote(h), `"your-machine"`)
	}
	s = strings.ReplaceAll(s, r.home, shownHome)
	s = strings.ReplaceAll(s, r.repo, shownHome+"/underhood")
	s = strings.ReplaceAll(s, r.top, "/tmp")
	if r.private != "" {
		s = strings.ReplaceAll(s, r.private, r.parent)
		s = strings.ReplaceAll(s, "/"+filepath.Base(r.private)+"/", "/"+cgroup.DefaultParent+"/")
	}
	s = killedRE.ReplaceAllString(s, "Killed")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}
