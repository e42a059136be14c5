package steps

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/inspect"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// TourOptions are what an instructor can set on the tour.
type TourOptions struct {
	From         int  // the first step with a stop; 0 means the first
	NoPause      bool // never wait for Enter (recordings, tests)
	CgroupParent string
	Self         string // the container's first program; "" = underhood-init or /proc/self/exe
}

// TourStop is a step's stop in the tour: what to say, what the underhood
// command is, and the demo that runs it and says what to look at.
type TourStop struct {
	About [2]string
	Cmd   string // the underhood command the demo amounts to; lines, # for a comment
	Demo  func(t *tour) (observation string, ok bool, err error)
}

// tour is one run of it: where its output goes and what it saw so far.
type tour struct {
	ctx   context.Context
	o     *ui.IO
	w     state.Workdir
	opt   TourOptions
	in    *bufio.Reader
	procs int   // processes seen from the chroot in step 4, for step 5
	cur   *Step // the stop under way
}

// tourSteps are the steps that have a stop in the tour, in order.
func tourSteps() []*Step {
	var out []*Step
	for _, s := range All() {
		if s.Tour.Demo != nil {
			out = append(out, s)
		}
	}
	return out
}

// Tour is the instructor's live demo: every step in order (from
// opt.From), each with what it shows, the article's shell commands and a
// demo that runs by itself, then the one thing to look at. On a terminal it
// waits for Enter between steps. It leaves nothing behind but the BusyBox
// and root filesystem of steps 1 and 2; an OOM kill in steps 6 and 7 is the
// expected outcome, not a failure.
func Tour(ctx context.Context, o *ui.IO, w state.Workdir, opt TourOptions) error {
	stops := tourSteps()
	last := stops[len(stops)-1].N
	if opt.From == 0 {
		opt.From = stops[0].N
	}
	if opt.From < stops[0].N || opt.From > last {
		return ui.Usagef("tour --from %d: give a step number from %d to %d", opt.From, stops[0].N, last)
	}
	if err := needRoot("tour"); err != nil {
		return err
	}
	if rf := of("rootfs"); opt.From > rf.N {
		if ok, detail := rootfsDone(w); !ok {
			return ui.Usagef("tour --from %d needs the root filesystem of %s (%s): start at step %d (sudo underhood tour --from %d), or run sudo %s first", opt.From, rf.Label(), detail, rf.N, rf.N, rf.Command())
		}
	}
	t := &tour{ctx: ctx, o: o, w: w, opt: opt, in: bufio.NewReader(o.In)}
	var surprises []string
	for i, s := range stops {
		if s.N < opt.From {
			continue
		}
		t.header(s, len(stops))
		t.cur = s
		// The commands are the stop's first screen; the demo the next.
		what := "run it: " + strings.Split(s.Tour.Cmd, "\n")[0]
		if w := t.o.Width; w > 0 && ui.Width("[Enter] "+what) >= w {
			what = "run it" // the command is on the screen, just above
		}
		if err := t.more(what, s); err != nil {
			return err
		}
		seen, ok, err := s.Tour.Demo(t)
		if err != nil {
			return err
		}
		if ok {
			o.Wrapf("%s\n", o.Bold(o.Green("▶ "+seen)))
		} else {
			o.Wrapf("%s\n", o.Bold(o.Yellow("▶ Not what the tour expected: "+seen)))
			surprises = append(surprises, strconv.Itoa(s.N))
		}
		if i < len(stops)-1 {
			if err := t.pause(stops[i+1]); err != nil {
				return err
			}
		}
	}
	o.Say()
	o.Say(o.Bold("That is the tour: chroot + namespaces + cgroups = a container."))
	if stops[len(stops)-1].Part == Beyond {
		o.Say("And pivot_root, more limits and fewer privileges make it hold: sudo underhood run --isolation full.")
	}
	o.Say(fmt.Sprintf("Nothing of it is left: no run in %s, no mount, no cgroup (see sudo underhood ps and sudo underhood check %d).", w.Runs(), of("run").N))
	if len(surprises) > 0 {
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("tour: step %s did not show what it should; see the ▶ lines above, and sudo underhood doctor", strings.Join(surprises, ", "))}
	}
	return nil
}

func (t *tour) header(s *Step, of int) {
	o := t.o
	stop := s.Tour
	if part := InPart(Beyond); s.Part == Beyond && len(part) > 0 && part[0] == s {
		o.Say(o.Bold(Beyond.String() + ": what real runtimes add, so that the container holds."))
		o.Say("Each step shows a hole in the article's container, for real, then closes it.")
		o.Say()
	}
	title := fmt.Sprintf("Step %d of %d: %s", s.N, of, s.Title)
	o.Say(o.Bold(o.Cyan("━━ " + title + " " + strings.Repeat("━", max(3, 72-len([]rune(title))-4)))))
	o.Say(stop.About[0])
	o.Say(stop.About[1])
	o.Say()
	if s.Part == Article {
		o.Say(o.Cyan("The shell way (as in the article):"))
	} else {
		o.Say(o.Cyan("The shell way (as on the page, " + s.Doc() + "):"))
	}
	commands(o, s.Explain.Shell)
	o.Say(o.Cyan("With underhood:"))
	commands(o, strings.Split(stop.Cmd, "\n"))
	o.Say()
}

// commands shows command lines as typed at a prompt; comments without one.
func commands(o *ui.IO, lines []string) {
	o.Shell(2, InsidePrompt, forLayout(lines, hostLayout()))
}

// forLayout leaves out of a shell way the part for the other cgroup
// layout: the lines under a "# cgroup v2 …" or "# cgroup v1 …" heading,
// up to the next heading, where this machine has the other one (v1 for a
// hybrid layout). With no layout known, every line stays.
func forLayout(lines []string, v2 *bool) []string {
	if v2 == nil {
		return lines
	}
	var out []string
	keep := true
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "# cgroup v2"):
			keep = *v2
		case strings.HasPrefix(l, "# cgroup v1"):
			keep = !*v2
		case strings.HasPrefix(l, "#"):
			keep = true
		}
		if keep {
			out = append(out, l)
		}
	}
	return out
}

// hostLayout says whether this machine's cgroups are v2 (unified) for
// the lesson's controllers; nil when it cannot tell.
func hostLayout() *bool {
	h, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil || h.Layout == cgroup.None {
		return nil
	}
	v2 := h.Layout == cgroup.V2
	return &v2
}

// pause waits for Enter on a terminal, unless --no-pause; Ctrl-C stops.
func (t *tour) pause(next *Step) error {
	if t.opt.NoPause || !t.o.InTTY {
		t.o.Say()
		return nil
	}
	t.o.Say()
	prompt := fmt.Sprintf("[Enter] step %d: %s", next.N, next.Title)
	stopped := fmt.Errorf("tour stopped before step %d; nothing is left behind (resume with 'sudo underhood tour --from %d')", next.N, next.N)
	if err := t.waitEnter(prompt, stopped); err != nil {
		return err
	}
	t.o.Say()
	return nil
}

// more pauses inside a stop, before what, so that each part of a long
// stop fits one screen; on a terminal only, and never with --no-pause.
func (t *tour) more(what string, s *Step) error {
	if t.opt.NoPause || !t.o.InTTY {
		return nil
	}
	stopped := fmt.Errorf("tour stopped in step %d; nothing is left behind (resume with 'sudo underhood tour --from %d')", s.N, s.N)
	return t.waitEnter("[Enter] "+what, stopped)
}

// waitEnter shows prompt and waits for Enter; Ctrl-C gives stopped.
func (t *tour) waitEnter(prompt string, stopped error) error {
	return waitEnter(t.ctx, t.o, t.in, prompt, "(Ctrl-C ends the tour)", stopped)
}

// capture is a copy of what a step writes, for the tour to look at while
// the step's own output goes to the screen as usual.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// sub is the IO a step of the tour runs with: the tour's own streams, with
// a copy kept, and no terminal for the payload (the tour types for it).
func (t *tour) sub(in io.Reader) (*ui.IO, *capture, *capture) {
	out, errs := &capture{}, &capture{}
	if in == nil {
		in = strings.NewReader("")
	}
	return &ui.IO{In: in, Out: io.MultiWriter(t.o.Out, out), Err: io.MultiWriter(t.o.Err, errs),
		OutTTY: t.o.OutTTY, Color: t.o.Color, Width: t.o.Width, Height: t.o.Height, NoNext: true}, out, errs
}

func (t *tour) options(argv ...string) ContainerOptions {
	opt := ContainerOptions{Argv: argv, CgroupParent: t.opt.CgroupParent, Self: t.opt.Self}
	if s := t.cur; s != nil {
		// A step's own pauses are the tour's, inside its stop.
		opt.Pause = func(what string) error { return t.more(what, s) }
	}
	return opt
}

// payloadStatus tells the payload's own exit status from underhood's
// errors: a payload that ended badly is something to show, an error of
// underhood's (or Ctrl-C) ends the tour.
func payloadStatus(err error) (int, error) {
	var ee *ui.ExitError
	if err == nil {
		return 0, nil
	}
	if errors.As(err, &ee) && ee.Err == nil && ee.Code != 129 && ee.Code != 130 && ee.Code != 143 {
		return ee.Code, nil
	}
	return 0, err
}

func (t *tour) download() (string, bool, error) {
	o := t.o
	if ok, detail := busyboxDone(t.w); ok {
		o.Note("BusyBox is already in the work directory (%s): no download needed.", detail)
		out, err := busybox.Hello(t.w.Busybox())
		if err != nil {
			return "", false, fmt.Errorf("BusyBox at %s does not run: %w; fetch it again with 'sudo underhood download'", t.w.Busybox(), err)
		}
		o.Say("$ " + t.w.Busybox() + " echo Hello from BusyBox!")
		o.Say(out)
	} else {
		sub, _, _ := t.sub(nil)
		if err := downloadBusybox(t.ctx, sub, t.w, DownloadOptions{}, false); err != nil {
			return "", false, err
		}
	}
	return "One file, every tool: BusyBox runs from anywhere, because it needs nothing from the host.", true, nil
}

func (t *tour) rootfs() (string, bool, error) {
	sub, _, _ := t.sub(nil)
	if err := Rootfs(t.ctx, sub, t.w, RootfsOptions{}); err != nil {
		return "", false, err
	}
	return "That is the whole container filesystem: five directories and one binary.", true, nil
}

var pidLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+\S`)

func (t *tour) chroot() (string, bool, error) {
	sub, out, _ := t.sub(nil)
	opt := t.options("/bin/busybox", "sh", "-c",
		`echo "/ # busybox ls /proc"; busybox ls /proc; echo "/ # busybox ps -A"; busybox ps -A`)
	opt.Shown = "a BusyBox shell (typing busybox ls /proc and busybox ps -A)"
	code, err := payloadStatus(Chroot(sub, t.w, opt))
	if err != nil {
		return "", false, err
	}
	s := out.String()
	ls, ps := between(s, "busybox ls /proc\n", "/ # busybox ps -A"), after(s, "/ # busybox ps -A\n")
	n := len(pidLine.FindAllString(ps, -1))
	if code != 0 || strings.TrimSpace(ls) != "" || n != 0 {
		return fmt.Sprintf("the chroot saw %q in /proc and %d processes (exit status %d)", strings.TrimSpace(ls), n, code), false, nil
	}
	return "/proc is empty and ps -A lists nothing: with no proc mounted, there is nothing to read processes from.", true, nil
}

func (t *tour) mountProc() (string, bool, error) {
	sub, out, _ := t.sub(nil)
	opt := t.options("/bin/busybox", "sh", "-c",
		`echo "/ # busybox ps -A | busybox wc -l"; busybox ps -A | busybox wc -l`)
	opt.Shown = "a BusyBox shell (typing busybox ps -A | busybox wc -l)"
	code, err := payloadStatus(MountProc(sub, t.w, opt))
	if err != nil {
		return "", false, err
	}
	lines := strings.Fields(after(out.String(), "busybox wc -l\n"))
	n := -1
	if len(lines) == 1 {
		n, _ = strconv.Atoi(lines[0])
	}
	if code != 0 || n < 3 {
		return fmt.Sprintf("ps -A printed %d lines in the chroot (exit status %d): want the host's processes", n, code), false, nil
	}
	t.procs = n - 1 // the header line
	return fmt.Sprintf("%d lines: ps's header and %d processes. With proc mounted, the chroot sees every process of the host.", n, t.procs), true, nil
}

func (t *tour) unshare() (string, bool, error) {
	// The shell reads its commands as if typed, so that ps shows it as
	// it would an interactive one.
	sub, out, _ := t.sub(strings.NewReader("echo \"/ # busybox ps -A\"; busybox ps -A\n"))
	code, err := payloadStatus(Unshare(sub, t.w, t.options("/bin/busybox", "sh")))
	if err != nil {
		return "", false, err
	}
	m := pidLine.FindAllStringSubmatch(after(out.String(), "/ # busybox ps -A\n"), -1)
	if code != 0 || len(m) != 2 || m[0][1] != "1" {
		return fmt.Sprintf("ps -A in the PID namespace listed %d processes (exit status %d): want the shell as PID 1, and ps", len(m), code), false, nil
	}
	before := t.procs
	if before == 0 {
		if pids, err := proc.Host.PIDs(); err == nil {
			before = len(pids)
		}
	}
	return fmt.Sprintf("Before the PID namespace: %d processes; inside it: the shell, as PID 1, and ps.", before), true, nil
}

func (t *tour) cgroup() (string, bool, error) {
	sub, _, errs := t.sub(nil)
	code, err := payloadStatus(Cgroup(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 137 || !strings.Contains(errs.String(), "OOM killer") {
		return fmt.Sprintf("the hog ended with exit status %d, not killed by the OOM killer (is swap on? sudo underhood doctor)", code), false, nil
	}
	return "Exit status 137 = 128 + SIGKILL: the kernel's OOM killer ended the hog at the limit, and nothing else on the machine noticed.", true, nil
}

// tourReady is what the full run's payload prints once it is set up and
// waits for the inspector.
const tourReady = "(the container is up and waits: the host has a look at it)"

func (t *tour) run() (string, bool, error) {
	name := container.RandomName("tour")
	// The container's shell reads its commands from the tour, as it would
	// from someone typing: first a line that says it is up, then, once the
	// inspector has looked, the rest.
	stdin, typist := io.Pipe()
	sub, out, errs := t.sub(stdin)
	rest := `echo "/ # busybox hostname"; busybox hostname
echo "/ # busybox ps -A"; busybox ps -A
echo '/ # data=$(busybox head -c 7500000 /dev/urandom)'
data=$(busybox head -c 7500000 /dev/urandom)
echo "(the hog survived)"
`
	opt := t.options("/bin/busybox", "sh")
	opt.Name = name
	done := make(chan error, 1)
	go func() { done <- Run(sub, t.w, opt) }()
	go func() { _, _ = typist.Write([]byte("echo \"" + tourReady + "\"\n")) }()

	var runErr error
	waited := false
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	for !waited {
		select {
		case runErr = <-done:
			waited = true
		case <-deadline:
			_ = typist.CloseWithError(errors.New("tour: the container did not start in time"))
			runErr, waited = <-done, true
		case <-tick.C:
			if strings.Contains(out.String(), tourReady) {
				if err := t.more("the host's view of the running container", of("run")); err != nil {
					_ = typist.Close() // the shell ends, and the run cleans up
					<-done
					return "", false, err
				}
				t.inspect(name)
				if err := t.more("hostname, ps and the hog, typed into its shell", of("run")); err != nil {
					_ = typist.Close()
					<-done
					return "", false, err
				}
				_, _ = typist.Write([]byte(rest))
				_ = typist.Close()
				runErr, waited = <-done, true
			}
		}
	}
	tick.Stop()
	_ = typist.Close()
	code, err := payloadStatus(runErr)
	if err != nil {
		return "", false, err
	}
	s := out.String()
	host := strings.TrimSpace(between(s, "/ # busybox hostname\n", "/ # busybox ps -A"))
	m := pidLine.FindAllStringSubmatch(between(s, "/ # busybox ps -A\n", "/ # data="), -1)
	left := t.leftovers(name)
	switch {
	case host != name:
		return fmt.Sprintf("the container's hostname is %q, not %s", host, name), false, nil
	case len(m) < 1 || m[0][1] != "1":
		return "ps -A in the container does not start at PID 1", false, nil
	case code != 137 || !strings.Contains(errs.String(), "OOM killer"):
		return fmt.Sprintf("the hog in the container ended with exit status %d, not killed by the OOM killer", code), false, nil
	case left != "":
		return "the run left " + left + " behind", false, nil
	}
	return fmt.Sprintf("Hostname %s, PID 1 at the top, killed at the memory limit: a container. Its cgroup, mounts and run directory are gone.", name), true, nil
}

// inspect shows the running container from the host, as 'underhood
// inspect NAME' does.
func (t *tour) inspect(name string) {
	o := t.o
	list, err := container.List(t.w)
	pid := 0
	for _, s := range list {
		if s.Name == name && s.State == container.Running {
			pid = s.HostPID
		}
	}
	if err != nil || pid == 0 {
		o.Warnf("the inspector cannot find container %s: %v", name, err)
		return
	}
	if t.opt.NoPause || !o.InTTY {
		o.Say() // on a terminal, the Enter at the pause ends the line above
	}
	o.Say(o.Cyan("The host's view, as sudo underhood inspect " + name + " shows it:"))
	src, err := inspect.Default([]inspect.Lab{{Name: name, Kind: "run", PID: pid}})
	if err == nil {
		var r *inspect.Report
		if r, err = inspect.Inspect(src, pid); err == nil {
			// The compact view, as inspect --watch shows it: one screen
			// with the line above it and the prompt below.
			h := o.Height
			if h <= 0 {
				h = 24
			}
			inspect.WriteCompact(o, r, inspect.Sections, h-3)
			return
		}
	}
	o.Warnf("the inspector could not read container %s: %v", name, err)
}

// leftovers says what of the run called name is still on the machine.
func (t *tour) leftovers(name string) string {
	if _, err := os.Lstat(t.w.Run(name)); err == nil {
		return t.w.Run(name)
	}
	infos, _ := mount.Read("/proc/self/mountinfo")
	if m := mount.Under(infos, filepath.Join(t.w.Runs(), name)); len(m) > 0 {
		return "a mount at " + m[0].Mountpoint
	}
	return ""
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	rest := s[i+len(a):]
	if j := strings.Index(rest, b); j >= 0 {
		return rest[:j]
	}
	return rest
}

func after(s, a string) string {
	if i := strings.Index(s, a); i >= 0 {
		return s[i+len(a):]
	}
	return ""
}

func (t *tour) pivotRoot() (string, bool, error) {
	sub, out, _ := t.sub(nil)
	code, err := payloadStatus(PivotRoot(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	s := out.String()
	if code != 0 || !strings.Contains(s, "Escaped:") || !strings.Contains(s, "Held:") {
		return fmt.Sprintf("the escape did not go as it should (exit status %d)", code), false, nil
	}
	return "Under chroot the escape read the host's file; under pivot_root it found only the container's root.", true, nil
}

func (t *tour) limits() (string, bool, error) {
	sub, _, errs := t.sub(nil)
	code, err := payloadStatus(Limits(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 0 || !strings.Contains(errs.String(), "throttled in") {
		return fmt.Sprintf("a limit did not show (exit status %d)", code), false, nil
	}
	return "The storm stopped at pids.max, the loop was throttled at its quota: the kernel's counters say so.", true, nil
}

func (t *tour) privileges() (string, bool, error) {
	sub, _, _ := t.sub(nil)
	code, err := payloadStatus(Privileges(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 0 {
		return fmt.Sprintf("something was still allowed with fewer privileges (exit status %d)", code), false, nil
	}
	return "Plain root could mount, make a device and escape; with runc's privileges all of it was refused.", true, nil
}

func (t *tour) network() (string, bool, error) {
	sub, _, _ := t.sub(nil)
	code, err := payloadStatus(Network(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 0 {
		return fmt.Sprintf("the network did not behave as the step expects (exit status %d)", code), false, nil
	}
	if netns.VethSupported() != nil {
		return "Alone, only lo, down; this kernel has no veth driver, so the pair was left out.", true, nil
	}
	return "Alone, only lo, down; joined by a veth pair, ping and TCP went both ways, and nothing else.", true, nil
}

func (t *tour) userns() (string, bool, error) {
	sub, _, _ := t.sub(nil)
	code, err := payloadStatus(UserNS(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 0 {
		return fmt.Sprintf("root in the user namespace was not nobody outside (exit status %d)", code), false, nil
	}
	return "Root inside both; in the user namespace it was uid 65534 to the host, and the root-only file stayed closed.", true, nil
}
