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
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/underhood/underhood/lab/ns"
)

// docPath is the page the figures are written into ("" for none).
var docPath string

// markdown prints the tables as Markdown, to paste into docs/performance.md.
var markdown = flag.Bool("markdown", false, "print the tables as Markdown, for docs/performance.md")

type bench struct {
	Name    string   `json:"name"`
	Argv    []string `json:"argv"`
	Note    string   `json:"note,omitempty"`
	Group   string   `json:"group"`
	Exit    int      `json:"exit"` // the exit status it must end with
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
	flag.StringVar(&docPath, "doc", "", "write the tables and the targets into this page, between its bench:begin and bench:end lines (make bench: docs/performance.md)")
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
	left := map[string]string{} // why a tool is not measured
	for _, rt := range []string{"runc", "crun"} {
		path, err := exec.LookPath(rt)
		if err != nil {
			left[rt+" run"] = rt + " is not installed"
			fmt.Fprintf(os.Stderr, "bench: %s left out: not installed (make setup installs it)\n", rt)
			continue
		}
		b, cleanup, err := runtimeBench(path, tmp, root)
		if err != nil {
			left[rt+" run"] = fmt.Sprintf("%s cannot take part: %v", rt, err)
			fmt.Fprintf(os.Stderr, "bench: %s left out: %v\n", rt, err)
			continue
		}
		defer cleanup()
		// crun 1.8 refuses a hybrid cgroup layout ("cgroups in hybrid mode
		// not supported"): one trial run says whether it can take part.
		if o, err := exec.Command(b.Argv[0], b.Argv[1:]...).CombinedOutput(); err != nil {
			left[rt+" run"] = fmt.Sprintf("%s cannot run on this machine: %q", rt, strings.TrimSpace(string(o)))
			fmt.Fprintf(os.Stderr, "bench: %s left out: it cannot run here: %s\n", rt, strings.TrimSpace(string(o)))
			continue
		}
		life = append(life, b)
	}
	life = append(life, &bench{Name: "busybox alone", Group: "life", Argv: []string{"/bin/busybox", "true"}, Note: "the floor"})

	// The inspector against the tools it must not be slower than: the
	// host overview against lsns, one running lab container against ps -e.
	boxName := fmt.Sprintf("benchbox-%d", os.Getpid())
	box := exec.Command(bin, "--workdir", wd, "run", "--name", boxName, "--", "/bin/busybox", "sleep", "3600")
	// If the bench dies (Ctrl-C, a closed pipe), the container ends and
	// cleans up all the same.
	box.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := box.Start(); err != nil {
		return fmt.Errorf("start the container to inspect: %w", err)
	}
	defer func() {
		_ = box.Process.Signal(syscall.SIGTERM) // underhood ends it and cleans up
		_ = box.Wait()
	}()
	for i := 0; exec.Command(bin, "--workdir", wd, "inspect", boxName, "--json").Run() != nil; i++ {
		if i > 100 {
			return fmt.Errorf("the container to inspect did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	insp := []*bench{
		{Name: "underhood inspect (host)", Group: "inspect", Argv: []string{bin, "--workdir", wd, "inspect", "--json"}},
		{Name: "lsns", Group: "inspect", Argv: []string{"lsns", "-J"}},
		{Name: "underhood inspect NAME", Group: "inspect", Argv: []string{bin, "--workdir", wd, "inspect", boxName, "--json"}},
		{Name: "ps -e", Group: "inspect", Argv: []string{"ps", "-e"}},
	}

	// A process start: underhood's own (every command pays it, and every
	// container pays it twice, parent and re-executed child) against an
	// empty Go program built the same way.
	empty, err := buildEmpty(tmp)
	if err != nil {
		return err
	}
	// The container's first process: underhood-init (make build puts it
	// beside underhood) or, without it, underhood itself. Started by hand
	// they stop at once (no pipe from a parent), after all their package
	// initialisation: that start is what every container pays.
	initProg := filepath.Join(filepath.Dir(bin), "underhood-init")
	start := []*bench{
		{Name: "underhood --version", Group: "start", Argv: []string{bin, "--version"}},
		{Name: "underhood-init (the child)", Group: "start", Argv: []string{initProg}, Exit: 2, Note: "the container's first process, started by hand"},
		{Name: "underhood as the child", Group: "start", Argv: []string{bin, ns.InitArg}, Exit: 1, Note: "without underhood-init: /proc/self/exe"},
		{Name: "empty Go program", Group: "start", Argv: []string{empty}, Note: "func main() {}, CGO_ENABLED=0"},
	}

	// Where a start's time goes: an empty program that only imports one
	// of the product's libraries (so pays its package initialisation and
	// the page faults of its code), and one that imports them all.
	libs, err := libraryBenches(tmp)
	if err != nil {
		return err
	}
	start = append(start, libs...)

	all := append(append(append([]*bench{}, start...), life...), insp...)
	// Warm up once, then alternate.
	for _, b := range all {
		measure(b.Argv)
	}
	for i := 0; i < n; i++ {
		for _, b := range all {
			s := measure(b.Argv)
			if s.Exit != b.Exit {
				return fmt.Errorf("%s: exit %d (%s)", b.Name, s.Exit, strings.Join(b.Argv, " "))
			}
			b.Samples = append(b.Samples, s)
		}
	}
	lifeBases := []string{"unshare+chroot", "runc run"}
	if _, ok := left["crun run"]; !ok {
		lifeBases = append(lifeBases, "crun run")
	}
	var doc strings.Builder
	for i, part := range []struct {
		bs    []*bench
		bases []string
	}{{start, []string{"empty Go program"}}, {life, lifeBases}, {insp, []string{"lsns", "ps -e"}}} {
		if i > 0 {
			fmt.Println()
			doc.WriteString("\n")
		}
		report(os.Stdout, *markdown, part.bs, part.bases...)
		report(&doc, true, part.bs, part.bases...)
	}
	targets := targetTable(all, left)
	fmt.Println()
	fmt.Print(targets)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	when := time.Now().UTC()
	raw := map[string]any{"when": when, "host": host, "kernel": cstr(uts.Release[:]), "runs": n, "benchmarks": all}
	b, _ := json.MarshalIndent(raw, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nraw figures: %s\n", out)
	if docPath == "" {
		return nil
	}
	var notes []string
	for _, why := range left {
		notes = append(notes, why)
	}
	slices.Sort(notes)
	section := fmt.Sprintf("One `make bench` run, %s, on %s (Linux %s, %d CPUs): %d runs of each command, all of them alternating; medians.\n\n",
		when.Format("2006-01-02 15:04 UTC"), host, cstr(uts.Release[:]), runtime.NumCPU(), n) + doc.String()
	if len(notes) > 0 {
		section += "\nLeft out: " + strings.Join(notes, "; ") + ".\n"
	}
	section += "\nAgainst the targets:\n\n" + targets
	if err := writeDoc(docPath, section); err != nil {
		return err
	}
	fmt.Printf("figures and targets written to %s\n", docPath)
	return nil
}

// libraries are the packages outside the standard library (and the
// standard library's heaviest, net/http, for step 1's download) that the
// product binary imports, by what they are for.
var libraries = []struct{ name, path string }{
	{"cobra (the commands)", "github.com/spf13/cobra"},
	{"fatih/color (colour)", "github.com/fatih/color"},
	{"go-runewidth (display widths)", "github.com/mattn/go-runewidth"},
	{"progressbar (step 1's progress)", "github.com/schollz/progressbar/v3"},
	{"net/http (step 1's download)", "net/http"},
	{"x/net/icmp (step 12's ping)", "golang.org/x/net/icmp"},
	{"runtime-spec (the OCI bundle)", "github.com/opencontainers/runtime-spec/specs-go"},
	{"x/sys/unix (system calls)", "golang.org/x/sys/unix"},
}

// libraryBenches builds, inside the module (for its versions), an empty
// program importing each library and one importing them all. The
// sources go in a directory that go's ./... leaves out, removed at once.
func libraryBenches(tmp string) ([]*bench, error) {
	src := filepath.Join("build", "bench", "_imports")
	defer os.RemoveAll(src)
	all := []string{}
	progs := map[string][]string{}
	for _, l := range libraries {
		progs[l.name] = []string{l.path}
		all = append(all, l.path)
	}
	const together = "all of these libraries"
	progs[together] = all
	var out []*bench
	for i, name := range append(namesOf(), together) {
		dir := filepath.Join(src, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var b strings.Builder
		b.WriteString("package main\n\nimport (\n")
		for _, p := range progs[name] {
			fmt.Fprintf(&b, "\t_ %q\n", p)
		}
		b.WriteString(")\n\nfunc main() {}\n")
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		bin := filepath.Join(tmp, fmt.Sprint("imports-", i))
		cmd := exec.Command("go", "build", "-o", bin, "./"+dir)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build the program importing %s: %v\n%s", name, err, o)
		}
		out = append(out, &bench{Name: "empty + " + name, Group: "start", Argv: []string{bin}, Note: "func main() {} importing " + strings.Join(progs[name], ", ")})
	}
	return out, nil
}

func namesOf() []string {
	var n []string
	for _, l := range libraries {
		n = append(n, l.name)
	}
	return n
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

// report prints one table of medians and ratios: aligned columns on the
// terminal, or a Markdown table (for docs/performance.md) with -markdown.
func report(w io.Writer, md bool, bs []*bench, bases ...string) {
	med := map[string]float64{}
	for _, b := range bs {
		med[b.Name] = median(b, func(s sample) float64 { return float64(s.WallNS) })
	}
	head := []string{"command", "median ms", "min–max ms", "CPU ms", "peak RSS MiB"}
	for _, b := range bases {
		head = append(head, "× "+b)
	}
	var rows [][]string
	for _, b := range bs {
		lo, hi := minmax(b)
		cpu := median(b, func(s sample) float64 { return float64(s.UserNS + s.SysNS) })
		rss := median(b, func(s sample) float64 { return float64(s.MaxRSSK) })
		row := []string{b.Name, fmt.Sprintf("%.1f", med[b.Name]/1e6), fmt.Sprintf("%.1f–%.1f", lo/1e6, hi/1e6),
			fmt.Sprintf("%.1f", cpu/1e6), fmt.Sprintf("%.1f", rss/1024)}
		for _, base := range bases {
			row = append(row, ratio(med[b.Name], med[base]))
		}
		rows = append(rows, row)
	}
	table(w, md, head, rows)
}

// table draws with tablewriter: no borders on a terminal, Markdown for the
// docs; the first column left, the figures right.
func table(w io.Writer, md bool, head []string, rows [][]string) {
	align := make([]tw.Align, len(head))
	for i := range align {
		align[i] = tw.AlignRight
	}
	align[0] = tw.AlignLeft
	var r tw.Renderer = renderer.NewBlueprint(tw.Rendition{
		Borders: tw.BorderNone,
		Settings: tw.Settings{
			Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
			Lines:      tw.Lines{ShowHeaderLine: tw.Off},
		},
	})
	if md {
		r = renderer.NewMarkdown()
	}
	var b strings.Builder
	t := tablewriter.NewTable(&b, tablewriter.WithRenderer(r),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(head)
	_ = t.Bulk(rows)
	_ = t.Render()
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if !md {
			l = strings.TrimRight(strings.TrimPrefix(l, " "), " ") // no padding at the edges
		}
		fmt.Fprintln(w, l)
	}
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
