// Command faults is the lab's fault suite (make faults, as root): it breaks
// underhood on purpose, the ways a clumsy user or a hostile payload would,
// and after each scenario looks for anything left on the machine — mounts,
// run directories, cgroups, processes — in a work directory and a cgroup
// parent of its own. It prints one line per failure and, last, one line:
// scenarios run, passed, leftovers found. It exits 1 unless all passed and
// nothing was left.
//
// Scenarios: kill -9 of underhood at several moments of every container
// step, then cleanup; SIGINT, SIGTERM and SIGHUP during a run; fifty runs at
// once; cleanup --all racing runs that keep starting; and the hostile
// inputs found by trying to break the lab (a user's directory under runs/,
// a FIFO for a journal, a forged journal, a symlinked work directory).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

type suite struct {
	bin, work, parent string
	run, passed, left int
	verbose           bool
	only              *regexp.Regexp

	mu   sync.Mutex
	seen map[string]bool // every run name seen under runs/
}

// watchRuns notes every run's name as it appears: steps without a
// --cgroup-parent make their cgroup under the default parent, and the
// leftover check looks for those by name.
func (s *suite) watchRuns() {
	for {
		ents, _ := os.ReadDir(filepath.Join(s.work, "runs"))
		s.mu.Lock()
		for _, e := range ents {
			s.seen[runName(e.Name())] = true
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// runName is the run a directory under runs/ is for: a run being made is
// .NAME.PID.new until it is complete.
func runName(n string) string {
	if t := strings.TrimSuffix(strings.TrimPrefix(n, "."), ".new"); t != n {
		if i := strings.LastIndexByte(t, '.'); i > 0 {
			return t[:i]
		}
	}
	return n
}

func main() {
	bin := flag.String("underhood", "./underhood", "the underhood binary to break")
	busybox := flag.String("busybox", "/bin/busybox", "a static BusyBox for step 1's --from")
	race := flag.Duration("race", 20*time.Second, "how long cleanup --all races starting runs")
	verbose := flag.Bool("v", false, "say every scenario, not only failures")
	only := flag.String("run", "", "run only the scenarios whose name matches this regular expression")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "faults: needs root (namespaces, mounts, cgroups): sudo make faults")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	top, err := os.MkdirTemp("", "underhood-faults-")
	if err != nil {
		fatal(err)
	}
	// Open to other users' walk: the user namespace step's root is nobody
	// on the host and must reach its root below this directory.
	if err := os.Chmod(top, 0o711); err != nil {
		fatal(err)
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fatal(fmt.Errorf("-run %q: %v", *only, err))
	}
	s := &suite{bin: abs, only: re, work: filepath.Join(top, "lab"), verbose: *verbose,
		parent: fmt.Sprintf("underhood/faults-%d", os.Getpid()), seen: map[string]bool{}}
	defer os.RemoveAll(top)
	defer s.removeParent()
	if out, err := s.underhood(60*time.Second, "download", "--from", *busybox); err != nil {
		fatal(fmt.Errorf("download: %v\n%s", err, out))
	}
	if out, err := s.underhood(60*time.Second, "rootfs"); err != nil {
		fatal(fmt.Errorf("rootfs: %v\n%s", err, out))
	}

	go s.watchRuns()
	s.killNine()
	s.escapedJobs()
	s.signals()
	s.forkStorm()
	s.fiftyAtOnce()
	s.cleanupRaces(*race)
	s.hostile(top)

	fmt.Printf("faults: %d scenarios run, %d passed, %d leftovers found\n", s.run, s.passed, s.left)
	if s.passed != s.run || s.left != 0 {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "faults:", err)
	os.Exit(2)
}

// scenario runs one scenario, then the leftover check; a scenario fails
// when it says so or when anything is left.
func (s *suite) scenario(name string, f func() error) {
	if !s.only.MatchString(name) {
		return
	}
	s.run++
	err := f()
	left := s.leftovers()
	if len(left) > 0 {
		s.left += len(left)
		s.reap()
		err = errors.Join(err, fmt.Errorf("left: %s", strings.Join(left, "; ")))
	}
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	s.passed++
	if s.verbose {
		fmt.Printf("ok   %s\n", name)
	}
}

// underhood runs the binary on the suite's work directory and waits, at
// most d: a command that takes longer counts as a hang.
func (s *suite) underhood(d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"--workdir", s.work, "--no-color"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // a payload's job may hold the output open
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("underhood %s hung: no end after %v", strings.Join(args, " "), d)
	}
	return out.String(), err
}

// start starts underhood without waiting.
func (s *suite) start(args ...string) (*exec.Cmd, *bytes.Buffer, error) {
	cmd := exec.Command(s.bin, append([]string{"--workdir", s.work, "--no-color"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A payload's job that outlives underhood holds the output open: Wait
	// must not wait for it.
	cmd.WaitDelay = 500 * time.Millisecond
	return cmd, &out, cmd.Start()
}

// container is the command line of a container step, with the suite's own
// cgroup parent where the step makes a cgroup.
func (s *suite) container(step string, payload ...string) []string {
	args := []string{step}
	switch step {
	case "cgroup", "run", "pivot-root", "limits", "privileges", "network", "userns":
		args = append(args, "--cgroup-parent", s.parent, "--memory", "64M")
	}
	return append(append(args, "--"), payload...)
}

// network's host end is in a network namespace of its own, which goes with
// underhood: the machine's network is not touched.
var containerSteps = []string{"chroot", "mount-proc", "unshare", "cgroup", "run", "network", "userns"}

// killNine kills underhood with SIGKILL at several moments of each step,
// from before it has done anything to while its payload runs, then asks
// cleanup --all to undo what is left.
func (s *suite) killNine() {
	for _, step := range containerSteps {
		for _, d := range []time.Duration{0, 2 * time.Millisecond, 8 * time.Millisecond, 30 * time.Millisecond, -1} {
			when := d.String()
			if d < 0 {
				when = "payload running"
			}
			s.scenario(fmt.Sprintf("kill -9 %s at %s, then cleanup --all", step, when), func() error {
				cmd, out, err := s.start(s.container(step, "/bin/busybox", "sleep", "30")...)
				if err != nil {
					return err
				}
				if d < 0 {
					if err := s.waitPayload("sleep", 10*time.Second); err != nil {
						cmd.Process.Kill()
						cmd.Wait()
						return fmt.Errorf("%v\n%s", err, out)
					}
				} else {
					time.Sleep(d)
				}
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if o, err := s.underhood(30*time.Second, "cleanup", "--all"); err != nil {
					return fmt.Errorf("cleanup --all: %v: %s", err, o)
				}
				return nil
			})
		}
	}
}

// escapedJobs: a payload's job that leaves its session (setsid) must die
// with the run, even when underhood itself was killed.
func (s *suite) escapedJobs() {
	for _, step := range []string{"chroot", "mount-proc", "unshare", "run"} {
		s.scenario(fmt.Sprintf("kill -9 %s whose payload started a setsid job, then cleanup --all", step), func() error {
			cmd, out, err := s.start(s.container(step, "/bin/busybox", "sh", "-c",
				// ash opens /dev/null for a background job: steps 3-5 have none.
				"[ -e /dev/null ] || /bin/busybox mknod /dev/null c 1 3; "+
					"/bin/busybox setsid /bin/busybox sleep 31 & exec /bin/busybox sleep 30")...)
			if err != nil {
				return err
			}
			if err := s.waitPayload("sleep", 10*time.Second); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return fmt.Errorf("%v\n%s", err, out)
			}
			if err := s.waitPayload("setsid", 0); err == nil {
				return fmt.Errorf("setsid still runs: the job did not start")
			}
			if err := s.waitArgs("sleep", "31", 5*time.Second); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return fmt.Errorf("%v\n%s", err, out)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if o, err := s.underhood(30*time.Second, "cleanup", "--all"); err != nil {
				return fmt.Errorf("cleanup --all: %v: %s", err, o)
			}
			return nil
		})
	}
}

// forkStorm: a fork bomb in a run with plenty of memory stops at the
// default task limit; underhood survives it and removes everything.
func (s *suite) forkStorm() {
	s.scenario("a fork storm in run --memory 512M", func() error {
		args := []string{"run", "--cgroup-parent", s.parent, "--memory", "512M", "--",
			"/bin/busybox", "sh", "-c", "f(){ f|f& };f; /bin/busybox sleep 2"}
		out, err := s.underhood(60*time.Second, args...)
		if strings.Contains(out, "fatal error") || strings.Contains(out, "panic") {
			return fmt.Errorf("underhood crashed: %s", firstLine(out, "fatal error", "panic"))
		}
		if err != nil && strings.Contains(err.Error(), "hung") {
			return err
		}
		return nil
	})
}

// signals sends each signal a user may send to a run, once its payload
// runs: underhood must clean up by itself and exit 128+N.
func (s *suite) signals() {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		s.scenario(fmt.Sprintf("%v during run", sig), func() error {
			cmd, out, err := s.start(s.container("run", "/bin/busybox", "sleep", "30")...)
			if err != nil {
				return err
			}
			if err := s.waitPayload("sleep", 10*time.Second); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return err
			}
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				return fmt.Errorf("underhood did not stop within 20s of %v", sig)
			}
			if got, want := cmd.ProcessState.ExitCode(), 128+int(sig); got != want {
				return fmt.Errorf("exit status %d, want %d (128+%d): %s", got, want, int(sig), lastLine(out.String()))
			}
			return nil
		})
	}
}

// fiftyAtOnce starts fifty runs together: all succeed, all clean up.
func (s *suite) fiftyAtOnce() {
	s.scenario("fifty runs at once", func() error {
		var wg sync.WaitGroup
		errs := make([]error, 50)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := s.underhood(60*time.Second, s.container("run", "/bin/busybox", "true")...); err != nil {
					errs[i] = fmt.Errorf("run %d: %v: %s", i, err, lastLine(out))
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

// cleanupRaces loops cleanup --all while runs keep starting: cleanup must
// never undo a live run, and every run must still succeed.
func (s *suite) cleanupRaces(d time.Duration) {
	s.scenario(fmt.Sprintf("cleanup --all races runs for %v", d), func() error {
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		fail := func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if out, err := s.underhood(30*time.Second, "cleanup", "--all"); err != nil {
					fail(fmt.Errorf("cleanup --all: %v: %s", err, lastLine(out)))
				}
			}
		}()
		runs := 0
		for time.Now().Before(stop) {
			runs++
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				if out, err := s.underhood(60*time.Second, s.container("run", "/bin/busybox", "sleep", "0.3")...); err != nil {
					fail(fmt.Errorf("run %d: %v: %s", n, err, lastLine(out)))
				}
			}(runs)
			time.Sleep(200 * time.Millisecond)
		}
		wg.Wait()
		if len(errs) > 0 {
			return fmt.Errorf("%d of %d runs or cleanups failed, first: %v", len(errs), runs, errs[0])
		}
		return nil
	})
}

// hostile feeds cleanup and ps what a clumsy user or a forged run
// directory gives them.
func (s *suite) hostile(top string) {
	runs := filepath.Join(s.work, "runs")
	s.scenario("cleanup --all keeps a user's thesis under runs/ (a directory with no journal)", func() error {
		dir := filepath.Join(runs, "thesis")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f := filepath.Join(dir, "chapter1.txt")
		if err := os.WriteFile(f, []byte("six months of work\n"), 0o644); err != nil {
			return err
		}
		out, _ := s.underhood(30*time.Second, "cleanup", "--all")
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("cleanup --all removed %s: %s", f, lastLine(out))
		}
		return nil
	})
	for _, cmd := range [][]string{{"ps"}, {"cleanup", "--all"}} {
		s.scenario(fmt.Sprintf("%s with a fifo for a journal ends", strings.Join(cmd, " ")), func() error {
			dir := filepath.Join(runs, "fifo")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := syscall.Mkfifo(filepath.Join(dir, "journal"), 0o644); err != nil {
				return err
			}
			_, err := s.underhood(10*time.Second, cmd...)
			if err != nil && strings.Contains(err.Error(), "hung") {
				return err
			}
			return nil
		})
	}
	s.scenario("cleanup --all spares a process that a forged journal names", func() error {
		sleeper := exec.Command("sleep", "60")
		if err := sleeper.Start(); err != nil {
			return err
		}
		pid := sleeper.Process.Pid
		defer func() { syscall.Kill(pid, syscall.SIGKILL); sleeper.Wait() }()
		st, err := startTime(pid)
		if err != nil {
			return err
		}
		dir := filepath.Join(runs, "forged")
		if err := forge(dir, fmt.Sprintf(`{"op":"pid","pid":%d,"start":%d,"pgid":%d}`, pid, st, pid)); err != nil {
			return err
		}
		out, err := s.underhood(30*time.Second, "cleanup", "--all")
		if err != nil {
			return fmt.Errorf("cleanup --all: %v: %s", err, lastLine(out))
		}
		if now, err := startTime(pid); err != nil || now != st {
			return fmt.Errorf("cleanup --all killed process %d, which a forged journal named: %s", pid, out)
		}
		return nil
	})
	s.scenario("cleanup --all removes a run whose journal has a line over 64 KiB", func() error {
		dir := filepath.Join(runs, "longline")
		if err := forge(dir, `{"op":"mount","path":"`+strings.Repeat("x", 100<<10)+`"}`); err != nil {
			return err
		}
		if out, err := s.underhood(30*time.Second, "cleanup", "--all"); err != nil {
			return fmt.Errorf("cleanup --all: %v: %s", err, lastLine(out))
		}
		return nil
	})
	s.scenario("cleanup --all reports a journal that is a directory", func() error {
		dir := filepath.Join(runs, "jdir")
		if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		out, err := s.underhood(30*time.Second, "cleanup", "--all")
		if err != nil || !strings.Contains(out, "is a directory") {
			return fmt.Errorf("cleanup --all: %v: %s", err, lastLine(out))
		}
		return nil
	})
	s.scenario("a symlinked --workdir is refused up front or works to the end", func() error {
		link := filepath.Join(top, "link")
		if err := os.Symlink(s.work, link); err != nil {
			return err
		}
		defer os.Remove(link)
		cmd := exec.Command(s.bin, "--workdir", link, "--no-color", "run", "--cgroup-parent", s.parent, "--", "/bin/busybox", "true")
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code != 2 {
			return fmt.Errorf("exit status %d, want 0 or 2: %s", code, lastLine(string(out)))
		}
		return nil
	})
}

// forge writes a run directory whose journal begins as underhood's do,
// then has the lines given.
func forge(dir string, lines ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j := fmt.Sprintf(`{"op":"dir","path":%q}`+"\n"+`{"op":"run","name":%q,"kind":"run"}`+"\n", dir, filepath.Base(dir))
	for _, l := range lines {
		j += l + "\n"
	}
	return os.WriteFile(filepath.Join(dir, "journal"), []byte(j), 0o644)
}

// startTime is field 22 of /proc/PID/stat, of a living process (a killed
// child of ours stays a zombie until waited for).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d is dead (state %s)", pid, f[0])
	}
	var st uint64
	_, err = fmt.Sscan(f[19], &st)
	return st, err
}

// waitArgs waits for a payload process "busybox APPLET ARG".
func (s *suite) waitArgs(applet, arg string, d time.Duration) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, p := range s.labProcs() {
			args, _ := os.ReadFile(filepath.Join("/proc", p, "cmdline"))
			if a := strings.Split(string(args), "\x00"); len(a) > 2 && a[1] == applet && a[2] == arg {
				return nil
			}
		}
	}
	return fmt.Errorf("the payload's job %s %s did not start within %v", applet, arg, d)
}

// waitPayload waits until a process running the BusyBox applet runs with
// its root inside the work directory: the container's payload.
func (s *suite) waitPayload(applet string, d time.Duration) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, p := range s.labProcs() {
			args, _ := os.ReadFile(filepath.Join("/proc", p, "cmdline"))
			if a := strings.Split(string(args), "\x00"); len(a) > 1 && a[1] == applet {
				return nil
			}
		}
	}
	return fmt.Errorf("the payload %s did not start within %v", applet, d)
}

// labProcs lists the processes whose root or working directory is inside
// the suite's work directory.
func (s *suite) labProcs() []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, l := range []string{"root", "cwd"} {
			if dst, err := os.Readlink(filepath.Join(p, l)); err == nil && strings.HasPrefix(dst, s.work) {
				pids = append(pids, filepath.Base(p))
				break
			}
		}
	}
	return pids
}

// leftovers is everything of the suite's on the machine once no command of
// its is running: mounts, run directories, cgroups, processes.
func (s *suite) leftovers() []string {
	var left []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		left = left[:0]
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], s.work) {
				left = append(left, "mount "+f[4])
			}
		}
		ents, _ := os.ReadDir(filepath.Join(s.work, "runs"))
		for _, e := range ents {
			left = append(left, "run directory "+e.Name())
		}
		for _, dir := range s.cgroupDirs() {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.IsDir() {
					left = append(left, "cgroup "+filepath.Join(dir, e.Name()))
				}
			}
		}
		s.mu.Lock()
		for name := range s.seen {
			for _, dir := range s.cgroupDirs("underhood/" + name) {
				left = append(left, "cgroup "+dir)
			}
		}
		s.mu.Unlock()
		for _, p := range s.labProcs() {
			left = append(left, "process "+p)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupDirs are the places the suite's cgroup parent (or the cgroup path
// given) may be, on v1 and v2, that exist.
func (s *suite) cgroupDirs(path ...string) []string {
	p := s.parent
	if len(path) > 0 {
		p = path[0]
	}
	var dirs []string
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"} {
		dir := filepath.Join(root, p)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// reap ends what a failed scenario left, so that the next one starts
// clean: processes inside the suite's own work directory (started by the
// suite's underhood), then cleanup. Leftovers are still counted.
func (s *suite) reap() {
	for _, p := range s.labProcs() {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	s.underhood(30*time.Second, "cleanup", "--all")
}

// removeParent removes the suite's cgroup parent, only that path, only
// once empty.
func (s *suite) removeParent() {
	for _, dir := range s.cgroupDirs() {
		os.Remove(dir)
	}
}

func firstLine(s string, subs ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				return l
			}
		}
	}
	return lastLine(s)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
