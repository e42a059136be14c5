// Command bench measures the whole lifecycle of a trivial container with
// underhood and with the tools it is compared against, in one run, with
// the commands alternating so that the machine's noise hits them alike.
// It prints a table with ratios and writes the raw figures as JSON.
//
//	sudo go run ./scripts/bench [-n 20] [-out build/bench/results.json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type bench struct {
	Name    string   `json:"name"`
	Argv    []string `json:"argv"`
	Note    string   `json:"note,omitempty"`
	Group   string   `json:"group"`
	Samples []sample `json:"samples"`
}

type sample struct {
	WallNS  int64 `json:"wall_ns"`
	UserNS  int64 `json:"user_ns"`
	SysNS   int64 `json:"sys_ns"`
	MaxRSSK int64 `json:"max_rss_kib"` // the measured process itself
	Exit    int   `json:"exit"`
}

func main() {
	n := flag.Int("n", 20, "runs per command (at least 20 for the figures in docs/performance.md)")
	out := flag.String("out", "build/bench/results.json", "where to write the raw figures")
	bin := flag.String("underhood", "./underhood", "the underhood binary to measure")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (it starts containers): run 'sudo make bench'")
		os.Exit(2)
	}
	if err := run(*n, *out, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n int, out, bin string) error {
	bin, _ = filepath.Abs(bin)
	tmp, err := os.MkdirTemp("", "underhood-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wd := filepath.Join(tmp, "lab")
	for _, a := range [][]string{{"download", "--from", "/bin/busybox"}, {"rootfs"}} {
		if o, err := exec.Command(bin, append([]string{"--workdir", wd}, a...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("prepare the lab (%s): %v\n%s", strings.Join(a, " "), err, o)
		}
	}
	root := filepath.Join(wd, "rootfs")
	script, _ := filepath.Abs("scripts/container.sh")

	life := []*bench{
		{Name: "underhood run", Group: "life", Argv: []string{bin, "--workdir", wd, "run", "--memory", "7M", "--", "/bin/busybox", "true"},
			Note: "per-run root, cgroup, PID+mount+UTS namespaces, proc, bind mounts, exec, cleanup"},
		{Name: "underhood unshare", Group: "life", Argv: []string{bin, "--workdir", wd, "unshare", "--", "/bin/busybox", "true"},
			Note: "step 5: the same work as unshare+chroot (PID+mount namespaces, proc, chroot), plus underhood's journal and cleanup"},
		{Name: "unshare+chroot", Group: "life", Argv: []string{"unshare", "-f", "-p", "--mount-proc=" + root + "/proc", "chroot", root, "/bin/busybox", "true"},
			Note: "util-linux on a prepared root: no cgroup, no cleanup"},
		{Name: "article script", Group: "life", Argv: []string{"bash", script, "/bin/busybox", "true"},
			Note: "scripts/container.sh, faithful to the article"},
	}
	for _, rt := range []string{"runc", "crun"} {
		path, err := exec.LookPath(rt)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s left out: not installed (make setup installs it)\n", rt)
			continue
		}
		b, cleanup, err := runtimeBench(path, tmp, root)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s left out: %v\n", rt, err)
			continue
		}
		defer cleanup()
		// crun 1.8 refuses a hybrid cgroup layout ("cgroups in hybrid mode
		// not supported"): one trial run says whether it can take part.
		if o, err := exec.Command(b.Argv[0], b.Argv[1:]...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s left out: it cannot run here: %s\n", rt, strings.TrimSpace(string(o)))
			continue
		}
		life = append(life, b)
	}
	life = append(life, &bench{Name: "busybox alone", Group: "life", Argv: []string{"/bin/busybox", "true"}, Note: "the floor"})

	// The inspector against the tools it must not be slower than: the
	// host overview against lsns, one running lab container against ps -e.
	box := exec.Command(bin, "--workdir", wd, "run", "--name", "benchbox", "--", "/bin/busybox", "sleep", "3600")
	if err := box.Start(); err != nil {
		return fmt.Errorf("start the container to inspect: %w", err)
	}
	defer func() {
		_ = box.Process.Signal(syscall.SIGTERM) // underhood ends it and cleans up
		_ = box.Wait()
	}()
	for i := 0; exec.Command(bin, "--workdir", wd, "inspect", "benchbox", "--json").Run() != nil; i++ {
		if i > 100 {
			return fmt.Errorf("the container to inspect did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	insp := []*bench{
		{Name: "underhood inspect (host)", Group: "inspect", Argv: []string{bin, "--workdir", wd, "inspect", "--json"}},
		{Name: "lsns", Group: "inspect", Argv: []string{"lsns", "-J"}},
		{Name: "underhood inspect NAME", Group: "inspect", Argv: []string{bin, "--workdir", wd, "inspect", "benchbox", "--json"}},
		{Name: "ps -e", Group: "inspect", Argv: []string{"ps", "-e"}},
	}

	// A process start: underhood's own (every command pays it, and every
	// container pays it twice, parent and re-executed child) against an
	// empty Go program built the same way.
	empty, err := buildEmpty(tmp)
	if err != nil {
		return err
	}
	start := []*bench{
		{Name: "underhood --version", Group: "start", Argv: []string{bin, "--version"}},
		{Name: "empty Go program", Group: "start", Argv: []string{empty}, Note: "func main() {}, CGO_ENABLED=0"},
	}

	all := append(append(append([]*bench{}, start...), life...), insp...)
	// Warm up once, then alternate.
	for _, b := range all {
		measure(b.Argv)
	}
	for i := 0; i < n; i++ {
		for _, b := range all {
			s := measure(b.Argv)
			if s.Exit != 0 {
				return fmt.Errorf("%s: exit %d (%s)", b.Name, s.Exit, strings.Join(b.Argv, " "))
			}
			b.Samples = append(b.Samples, s)
		}
	}
	report(start, "empty Go program")
	fmt.Println()
	report(life, "unshare+chroot", "runc run")
	fmt.Println()
	report(insp, "lsns", "ps -e")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	doc := map[string]any{"when": time.Now().UTC(), "host": host, "kernel": cstr(uts.Release[:]), "runs": n, "benchmarks": all}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nraw figures: %s\n", out)
	return nil
}

// buildEmpty builds an empty static Go program, the floor of a Go
// process's start.
func buildEmpty(tmp string) (string, error) {
	dir := filepath.Join(tmp, "empty")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "empty")
	cmd := exec.Command("go", "build", "-o", out, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the empty Go program: %v\n%s", err, o)
	}
	return out, nil
}

func measure(argv []string) sample {
	cmd := exec.Command(argv[0], argv[1:]...)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	s := sample{WallNS: wall.Nanoseconds()}
	if cmd.ProcessState != nil {
		s.Exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.UserNS = ru.Utime.Nano()
			s.SysNS = ru.Stime.Nano()
			s.MaxRSSK = ru.Maxrss
		}
	} else if err != nil {
		s.Exit = -1
	}
	return s
}

func report(bs []*bench, bases ...string) {
	med := map[string]float64{}
	for _, b := range bs {
		med[b.Name] = median(b, func(s sample) float64 { return float64(s.WallNS) })
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "command\tmedian ms\tmin–max ms\tcpu ms\tpeak RSS MiB\t"
	for _, b := range bases {
		head += "× " + b + "\t"
	}
	fmt.Fprintln(tw, head)
	for _, b := range bs {
		lo, hi := minmax(b)
		cpu := median(b, func(s sample) float64 { return float64(s.UserNS + s.SysNS) })
		rss := median(b, func(s sample) float64 { return float64(s.MaxRSSK) })
		row := fmt.Sprintf("%s\t%.1f\t%.1f–%.1f\t%.1f\t%.1f\t", b.Name, med[b.Name]/1e6, lo/1e6, hi/1e6, cpu/1e6, rss/1024)
		for _, base := range bases {
			row += ratio(med[b.Name], med[base]) + "\t"
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func median(b *bench, f func(sample) float64) float64 {
	v := make([]float64, len(b.Samples))
	for i, s := range b.Samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func minmax(b *bench) (float64, float64) {
	lo, hi := 0.0, 0.0
	for i, s := range b.Samples {
		w := float64(s.WallNS)
		if i == 0 || w < lo {
			lo = w
		}
		if w > hi {
			hi = w
		}
	}
	return lo, hi
}

func cstr(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}
