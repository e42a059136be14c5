package main

// gen-docs is a hidden command, not a program of its own in scripts/: the
// command tree is built by this package (package main, which nothing can
// import), so the generator has to live here to see exactly the commands,
// flags and help texts that users get, and docs_test.go can call the same
// functions in-process. scripts/docs.sh and 'make docs' drive it.

import (
	"bufio"
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/ui"
)

func init() {
	addCommand(func(g *globals) *cobra.Command {
		var cli, pages string
		var lint []string
		var check bool
		c := &cobra.Command{
			Use:    "gen-docs [--cli DIR] [--pages DIR] [--check]",
			Short:  "Regenerate the guide's command reference and outputs (for developers)",
			Hidden: true,
			Args:   noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if cli == "" && pages == "" && len(lint) == 0 {
					return ui.Usagef("gen-docs: give --cli DIR, --pages DIR or --lint FILE")
				}
				var stale []string
				for _, f := range lint {
					s, err := lintFile(f)
					if err != nil {
						return err
					}
					stale = append(stale, s...)
				}
				if cli != "" {
					s, err := cliDocs(cli, check)
					if err != nil {
						return err
					}
					stale = append(stale, s...)
				}
				if pages != "" {
					self, err := os.Executable()
					if err != nil {
						return err
					}
					s, err := pageDocs(g.io, self, pages, check)
					if err != nil {
						return err
					}
					stale = append(stale, s...)
				}
				if len(stale) > 0 {
					for _, s := range stale {
						g.io.Say(s)
					}
					return &ui.ExitError{Code: 1, Err: errors.New("the docs are stale: run 'sudo make docs' and commit the result")}
				}
				return nil
			},
		}
		c.Flags().StringVar(&cli, "cli", "", "write the command reference (one Markdown page per command) to DIR")
		c.Flags().StringVar(&pages, "pages", "", "run the commands marked in DIR/*.md and fill in their output (root)")
		c.Flags().StringSliceVar(&lint, "lint", nil, "check that every underhood command shown in these Markdown files exists and parses")
		c.Flags().BoolVar(&check, "check", false, "change nothing: say what is stale and exit 1 if anything is")
		return c
	})
}

// docsTree is the command tree as users get it, with cobra's own help and
// completion commands, which Execute would add.
func docsTree() *cobra.Command {
	root := newRootCmd(&globals{})
	root.DisableAutoGenTag = true
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// genCLI writes the command reference to dir: one page per command.
func genCLI(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.GenMarkdownTree(docsTree(), dir)
}

// cliDocs regenerates the reference in dir, or with check compares it and
// returns what differs.
func cliDocs(dir string, check bool) ([]string, error) {
	tmp, err := os.MkdirTemp("", "underhood-cli-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := genCLI(tmp); err != nil {
		return nil, err
	}
	stale, err := diffDirs(tmp, dir)
	if err != nil || check || len(stale) == 0 {
		return stale, err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "underhood*.md"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fresh, _ := filepath.Glob(filepath.Join(tmp, "*.md"))
	for _, f := range fresh {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// diffDirs compares the generated pages in want with those in have.
func diffDirs(want, have string) ([]string, error) {
	var stale []string
	w, _ := filepath.Glob(filepath.Join(want, "*.md"))
	h, _ := filepath.Glob(filepath.Join(have, "underhood*.md"))
	seen := map[string]bool{}
	for _, f := range w {
		name := filepath.Base(f)
		seen[name] = true
		a, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(have, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stale = append(stale, filepath.Join(have, name)+": missing")
		case err != nil:
			return nil, err
		case !bytes.Equal(a, b):
			stale = append(stale, filepath.Join(have, name)+": differs from the commands' help")
		}
	}
	for _, f := range h {
		if !seen[filepath.Base(f)] {
			stale = append(stale, f+": no such command any more")
		}
	}
	return stale, nil
}

// The guide's outputs. A page marks a command, or a session of commands,
// whose output the runner fills in:
//
//	<!-- output: sudo underhood unshare -- busybox ps -A -->
//	```console
//	… filled in …
//	```
//	<!-- end -->
//
// or, for several commands and shells started by them:
//
//	<!-- output(v1,loose)
//	$ cd ~/container
//	$ sudo chroot . /bin/busybox sh
//	/ # busybox ls /proc
//	/ # exit
//	-->
//
// A line's prompt is everything up to its first "$ " or "# ". "$ " lines
// go to one bash per block, in the home directory; a "$ " line followed by
// other prompts starts a shell that reads those lines, until the next "$ "
// line. Tags: v1 or v2 (run only where the memory controller is that cgroup
// version: the output names the layout), noswap (run only without swap),
// loose (numbers do not count when comparing), error (a command may fail to
// run, to show the mistake). A block that cannot run here is left as it is,
// and said so.
//
// The commands run as root in a fresh lab: HOME is a new directory shown as
// /home/you, underhood's work directory ($UNDERHOOD_HOME) a new one shown as
// /var/lib/underhood (the temporary paths have the same lengths, so tables
// stay aligned), sudo runs its arguments as they are, colour is off. Every
// page sees what the pages before it left, as a reader working through the
// guide would. A block is rewritten only when its output changed beyond
// what normalise forgives (PIDs, random names, sizes, times).

// docLine is one command of a block, with the prompt it is typed at.
type docLine struct{ prompt, cmd string }

func (l docLine) host() bool { return l.prompt == "$ " }

type docBlock struct {
	page       string
	line       int // of the marker, for messages
	tags       map[string]bool
	lines      []docLine
	start, end int    // the byte range of the content, between the marker and <!-- end -->
	content    string // what the page has now
}

var (
	markerRE = regexp.MustCompile(`(?s)<!-- output(?:\(([a-z0-9,-]*)\))?(?::\s*(.*?)\s*-->|\n(.*?)\n-->)\n`)
	endRE    = regexp.MustCompile(`(?m)^<!-- end -->$`)
)

func parseBlocks(page, text string) ([]*docBlock, error) {
	var out []*docBlock
	pos := 0
	for {
		m := markerRE.FindStringSubmatchIndex(text[pos:])
		if m == nil {
			return out, nil
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
		b := &docBlock{page: page, line: strings.Count(text[:m[0]], "\n") + 1, tags: map[string]bool{}, start: m[1]}
		if m[2] >= 0 {
			for _, t := range strings.Split(text[m[2]:m[3]], ",") {
				switch t {
				case "v1", "v2", "noswap", "loose", "error":
					b.tags[t] = true
				default:
					return nil, fmt.Errorf("%s:%d: unknown tag %q", page, b.line, t)
				}
			}
		}
		if m[4] >= 0 {
			b.lines = []docLine{{"$ ", text[m[4]:m[5]]}}
		} else {
			for _, l := range strings.Split(text[m[6]:m[7]], "\n") {
				if strings.TrimSpace(l) == "" {
					continue
				}
				p := promptEnd(l)
				if p < 0 {
					return nil, fmt.Errorf("%s:%d: %q has no prompt ($ or #)", page, b.line, l)
				}
				b.lines = append(b.lines, docLine{l[:p], l[p:]})
			}
		}
		if len(b.lines) == 0 || !b.lines[0].host() {
			return nil, fmt.Errorf("%s:%d: a block starts with a $ command", page, b.line)
		}
		e := endRE.FindStringIndex(text[b.start:])
		if e == nil {
			return nil, fmt.Errorf("%s:%d: no <!-- end --> after the output marker", page, b.line)
		}
		b.end = b.start + e[0]
		b.content = text[b.start:b.end]
		out = append(out, b)
		pos = b.end
	}
}

// promptEnd is where the prompt of l ends: after its first "$ " or "# ".
func promptEnd(l string) int {
	i, j := strings.Index(l, "$ "), strings.Index(l, "# ")
	switch {
	case i < 0 && j < 0:
		return -1
	case i < 0 || (j >= 0 && j < i):
		return j + 2
	}
	return i + 2
}

// docRunner runs blocks in one fresh lab.
type docRunner struct {
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

func newDocRunner(binary, repo string) (*docRunner, error) {
	if os.Geteuid() != 0 {
		return nil, ui.Usagef("the guide's commands need root: run 'sudo make docs'")
	}
	top, err := os.MkdirTemp("", "underhood-docs-")
	if err != nil {
		return nil, err
	}
	r := &docRunner{binary: binary, top: top, timeout: 60 * time.Second}
	fail := func(err error) (*docRunner, error) { r.Close(); return nil, err }
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
		"HOME=" + r.home, "UNDERHOOD_HOME=" + r.lab, "NO_COLOR=1", "TERM=dumb", "LC_ALL=C", "USER=root", "LOGNAME=root"}
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
func (r *docRunner) Close() {
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
func (r *docRunner) skip(b *docBlock) string {
	switch {
	case b.tags["v1"] && r.host.MemoryVersion != 1:
		return "needs a cgroup v1 memory controller"
	case b.tags["v2"] && r.host.MemoryVersion != 2:
		return "needs a cgroup v2 memory controller"
	case b.tags["noswap"] && swapOn():
		return "needs swap off (its output says whether swap is on)"
	}
	return ""
}

func swapOn() bool {
	b, err := os.ReadFile("/proc/swaps")
	return err == nil && strings.Count(strings.TrimSpace(string(b)), "\n") > 0
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

func (r *docRunner) startShell() (*pageShell, error) {
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
func (r *docRunner) endPage() {
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
func (r *docRunner) run(b *docBlock) (string, error) {
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
	sepRE := regexp.MustCompile(`@@uh-` + r.token + `-(\d+)-(\d+)@@\n?`)
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
			fmt.Fprintf(stdin, "%s <%s\n__uh %s %d\n", l.cmd, path, r.token, sessionEnd)
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
		outputs = append(outputs, r.render(text.s))
	}
	var c strings.Builder
	c.WriteString("```console\n")
	for i, l := range b.lines {
		c.WriteString(l.prompt + l.cmd + "\n")
		c.WriteString(outputs[i])
	}
	c.WriteString("```\n")
	return c.String(), nil
}

type sepText struct {
	s    string
	next int
}

// waitSep waits until the separator of line id, or that of end (the end
// of the session the line is in, -1 for none), shows up after pos.
func (r *docRunner) waitSep(out *output, sepRE *regexp.Regexp, pos, id, end int) (sepText, int, int, error) {
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
func didNotRun(l docLine, status int) string {
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
func (r *docRunner) render(s string) string {
	s = strings.ReplaceAll(s, r.lab, shownLab)
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

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b([a-z]+(?:-[a-z]+)*)-[0-9a-f]{8,10}\b`), "$1-RANDOM"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)? ?(?:B|KiB|MiB|GiB)\b`), "SIZE"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|s)\b`), "TIME"},
	{regexp.MustCompile(`(\bas PID|\bhost PID|\bPID|(?:^|\s)-p|\bpid) \d{2,}\b`), "$1 PID"},
	{regexp.MustCompile(`/proc/\d{2,}/`), "/proc/PID/"},
	// ps in a PID namespace: PID 1 is the lesson, the numbers after it
	// depend on how many processes came and went before.
	{regexp.MustCompile(`(?m)^(\s*)(?:[2-9]|\d{2,})(\s+\d+\s+)`), "${1}PID${2}"},
	// The OOM killer may end the hog alone, or the hog and its feeder:
	// none or some is what counts.
	{regexp.MustCompile(`\boom_kill( =)? [1-9]\d*\b`), "oom_kill$1 SOME"},
	{regexp.MustCompile(`\bended [1-9]\d* process(?:es)?\b`), "ended SOME processes"},
	{regexp.MustCompile(`[ \t]+`), " "},
	{regexp.MustCompile(`(?m)^ | $`), ""},
}

var digitsRE = regexp.MustCompile(`\d+`)

// normalise is what two outputs must agree on: the same text, whatever the
// PIDs, random names, sizes, times and column widths; with loose, whatever
// any number.
func normalise(s string, loose bool) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	if loose {
		s = digitsRE.ReplaceAllString(s, "N")
	}
	return s
}

// docPages lists the guide's pages in reading order: the numbered steps,
// then the rest.
func docPages(dir string) ([]string, error) {
	pages, err := filepath.Glob(filepath.Join(dir, "*.md"))
	sort.Strings(pages)
	return pages, err
}

// pageDocs runs every marked block of the pages in dir, in order, in one
// fresh lab, and rewrites the blocks whose output changed; with check it
// changes nothing and returns what is stale.
func pageDocs(o *ui.IO, binary, dir string, check bool) ([]string, error) {
	pages, err := docPages(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := newDocRunner(binary, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var stale []string
	for _, p := range pages {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		text := string(raw)
		blocks, err := parseBlocks(p, text)
		if err != nil {
			return nil, err
		}
		changed := false
		var fresh []string
		for _, b := range blocks {
			if why := r.skip(b); why != "" {
				o.Note("%s:%d: skipped: %s", b.page, b.line, why)
				fresh = append(fresh, b.content)
				continue
			}
			got, err := r.run(b)
			if err != nil {
				return nil, err
			}
			loose := b.tags["loose"]
			if normalise(got, loose) == normalise(b.content, loose) {
				fresh = append(fresh, b.content)
				continue
			}
			changed = true
			stale = append(stale, fmt.Sprintf("%s:%d: the output differs:\n%s", b.page, b.line, lineDiff(b.content, got, loose)))
			fresh = append(fresh, got)
		}
		r.endPage()
		if !changed || check {
			continue
		}
		var out strings.Builder
		last := 0
		for i, b := range blocks {
			out.WriteString(text[last:b.start])
			out.WriteString(fresh[i])
			last = b.end
		}
		out.WriteString(text[last:])
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			return nil, err
		}
		o.Note("%s: rewrote its changed outputs", p)
	}
	if check {
		return stale, nil
	}
	return nil, nil
}

// lineDiff shows where two outputs part: the first line that differs
// after normalising, with a little context, as the page has it and as it
// is now.
func lineDiff(was, now string, loose bool) string {
	a, b := strings.Split(was, "\n"), strings.Split(now, "\n")
	i := 0
	for i < len(a) && i < len(b) && normalise(a[i], loose) == normalise(b[i], loose) {
		i++
	}
	var s strings.Builder
	from := max(0, i-2)
	for j := from; j < min(len(a), i+3); j++ {
		fmt.Fprintf(&s, "  page: %s\n", a[j])
	}
	for j := from; j < min(len(b), i+3); j++ {
		fmt.Fprintf(&s, "  now:  %s\n", b[j])
	}
	return s.String()
}

// guideCommands finds every underhood command a page shows: in fenced code
// blocks ("$ sudo underhood …" or a line that starts with it) and in inline
// code spans, with the line each is on.
func guideCommands(text string) []guideCommand {
	var out []guideCommand
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	inFence, n := false, 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			t := strings.TrimSpace(l)
			if p := promptEnd(t); p >= 0 && (strings.HasPrefix(t, "$ ") || strings.HasPrefix(t, "# ")) {
				t = t[p:]
			}
			if isUnderhood(t) {
				out = append(out, guideCommand{n, t, false})
			}
			continue
		}
		for _, m := range inlineCodeRE.FindAllStringSubmatch(l, -1) {
			if isUnderhood(m[1]) {
				out = append(out, guideCommand{n, m[1], true})
			}
		}
	}
	return out
}

type guideCommand struct {
	line   int
	cmd    string
	inline bool // in a code span of the text, not a code block
}

var inlineCodeRE = regexp.MustCompile("`([^`]+)`")

func isUnderhood(s string) bool {
	return strings.HasPrefix(s, "underhood ") || strings.HasPrefix(s, "sudo underhood ") || s == "underhood" || s == "sudo underhood"
}

// placeholders stand for what the reader fills in: check N, --pid PID.
var placeholders = map[string]string{"N": "1", "PID": "1", "NAME": "box1", "DIR": "/tmp", "FILE": "/tmp/file", "CMD": "true", "INTERVAL": "1s"}

// lintMention is lintCommand for a command named in the text: "see
// `underhood ps`" names a command without running it, so a name alone
// only has to exist.
func lintMention(root *cobra.Command, line string) error {
	words, err := shellWords(line)
	if err != nil {
		return err
	}
	if len(words) > 0 && words[0] == "sudo" {
		words = words[1:]
	}
	if len(words) >= 2 {
		if cmd, rest, err := root.Find(words[1:]); err == nil && len(rest) == 0 && cmd != root {
			return nil
		}
	}
	return lintCommand(root, line)
}

// lintCommand checks that an underhood command line names a command that
// exists, with flags it has and arguments it takes; it does not run it.
func lintCommand(root *cobra.Command, line string) error {
	words, err := shellWords(line)
	if err != nil {
		return err
	}
	for i, w := range words { // as the shell expands it, and the reader fills it in
		if w == "~" || strings.HasPrefix(w, "~/") {
			words[i] = shownHome + w[1:]
		}
		if v, ok := placeholders[w]; ok {
			words[i] = v
		}
	}
	if len(words) > 0 && words[0] == "sudo" {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "underhood" {
		return fmt.Errorf("not an underhood command")
	}
	args := words[1:]
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd.DisableFlagParsing {
		return nil
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	flags := cmd.Flags()
	if cmd.Args != nil {
		if err := cmd.Args(cmd, flags.Args()); err != nil {
			return err
		}
	}
	if !cmd.Runnable() && len(flags.Args()) > 0 {
		return fmt.Errorf("unknown command %q for %q", flags.Args()[0], cmd.CommandPath())
	}
	return nil
}

var downloadRE = regexp.MustCompile(`https://busybox\.net/downloads/binaries/\S+/busybox`)

// lintFile checks the commands a Markdown file shows without running them:
// underhood commands against the command tree, download URLs against the
// pinned one.
func lintFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, c := range guideCommands(string(b)) {
		lint := lintCommand
		if c.inline {
			lint = lintMention
		}
		if err := lint(docsTree(), c.cmd); err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: %s: %v", path, c.line, c.cmd, err))
		}
	}
	for _, u := range downloadRE.FindAllString(string(b), -1) {
		if u != busybox.DefaultURL {
			bad = append(bad, fmt.Sprintf("%s: %s is not the pinned download %s", path, u, busybox.DefaultURL))
		}
	}
	return bad, nil
}

// shellWords splits a command line as a shell would, enough for the guide:
// quotes, and the end of the command at a comment, ;, &, | or a redirection.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	have := false
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, have = c, true
		case c == ' ' || c == '\t':
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case strings.ContainsRune("#;&|<>", c) && !have:
			return appendWord(words, &cur, have), nil
		case strings.ContainsRune("<>", c) && regexp.MustCompile(`^\d+$`).MatchString(cur.String()):
			return words, nil // 2>/dev/null: the 2 is not a word
		case strings.ContainsRune(";&|<>", c):
			return appendWord(words, &cur, have), nil
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	return appendWord(words, &cur, have), nil
}

func appendWord(words []string, cur *strings.Builder, have bool) []string {
	if have {
		words = append(words, cur.String())
	}
	return words
}
