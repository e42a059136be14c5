package ui

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// tableCase is a table as the commands draw them: coloured status words,
// a column empty in every row (doctor's HINT when all is well), long text.
type tableCase struct {
	name   string
	header []string
	rows   func(o *IO) [][]string
}

var tableCases = []tableCase{
	{"steps", []string{"STEP", "TITLE", "COMMAND", "DONE", "STATE"}, func(o *IO) [][]string {
		return [][]string{
			{"1", "Download BusyBox", "underhood download", o.Green("yes"), o.Green("ready") + " /var/lib/underhood/busybox"},
			{"2", "Prepare a root filesystem", "underhood rootfs", o.Faint("-"), o.Yellow("missing")},
			{"6", "A memory cgroup", "underhood cgroup --memory 100M", o.Faint("-"), ""},
		}
	}},
	{"doctor", []string{"CHECK", "STATUS", "DETAIL", "HINT"}, func(o *IO) [][]string {
		return [][]string{
			{"root", o.Status(OK), "running as root (euid 0)", ""},
			{"kernel", o.Status(OK), "Linux 6.1.0-13-amd64 x86_64, user namespaces allowed by kernel.unprivileged_userns_clone=1", ""},
			{"cgroup", o.Status(Warn), "hybrid layout: memory on cgroup v1 at /sys/fs/cgroup/memory, cgroup2 at /sys/fs/cgroup/unified without controllers", ""},
		}
	}},
	{"hints", []string{"CHECK", "STATUS", "DETAIL", "HINT"}, func(o *IO) [][]string {
		return [][]string{
			{"mount", o.Status(Fail), "proc still mounted at /var/lib/underhood/rootfs/proc", "end the shells still inside it first (see 'underhood ps'), then sudo umount /var/lib/underhood/rootfs/proc"},
			{"busybox", o.Status(OK), "/var/lib/underhood/busybox (1.1 MB, static)", ""},
		}
	}},
}

// TestTableGolden draws each table with colour off and on, at 80 and 120
// columns and piped (no limit), and checks what a person sees: no line
// wider than the terminal, every column starting at the same visible
// offset on every line, no empty column, no trailing spaces.
func TestTableGolden(t *testing.T) {
	for _, tc := range tableCases {
		for _, colour := range []bool{false, true} {
			for _, width := range []int{0, 80, 120} {
				name := fmt.Sprintf("%s-%s-%d", tc.name, map[bool]string{false: "plain", true: "colour"}[colour], width)
				t.Run(name, func(t *testing.T) {
					var out bytes.Buffer
					o := Buffers(nil, &out, &out)
					o.Color, o.Width = colour, width
					o.Table(tc.header, tc.rows(o))
					got := out.String()
					if colour && !strings.Contains(got, "\x1b[") {
						t.Fatal("colour on, but no escape codes")
					}
					checkTable(t, got, tc.header, width)
					golden(t, filepath.Join("testdata", name+".golden"), got)
					if colour {
						var plain bytes.Buffer
						po := Buffers(nil, &plain, &plain)
						po.Width = width
						po.Table(tc.header, tc.rows(po))
						if Strip(got) != plain.String() {
							t.Errorf("colour changes the layout:\n%s\nwithout colour:\n%s", Strip(got), plain.String())
						}
					}
				})
			}
		}
	}
}

// checkTable asserts the layout of a drawn table against its header.
func checkTable(t *testing.T, got string, header []string, width int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	head := Strip(lines[0])
	var offs []int
	from := 0
	for _, h := range header {
		i := strings.Index(head[from:], h)
		if i < 0 {
			continue // a column left out
		}
		offs = append(offs, from+i)
		from += i + len(h)
	}
	if strings.Contains(head, "HINT") && !strings.Contains(Strip(got), "sudo") {
		t.Errorf("an empty HINT column is drawn:\n%s", got)
	}
	for n, l := range lines {
		v := []rune(Strip(l))
		if width > 0 && Width(l) > width {
			t.Errorf("line %d is %d columns wide, the terminal %d:\n%s", n, Width(l), width, Strip(l))
		}
		if strings.HasSuffix(l, " ") || strings.HasSuffix(Strip(l), " ") {
			t.Errorf("line %d has trailing spaces: %q", n, l)
		}
		for _, off := range offs[1:] {
			// Every column is preceded by the gap, on every line: no
			// cell runs into the next column.
			if off-1 < len(v) && v[off-1] != ' ' {
				t.Errorf("line %d: column at %d is not preceded by a space:\n%s", n, off, string(v))
			}
		}
		// Text after a gap of two or more spaces starts at a column: a
		// cell is never pushed right or left of it.
		for i := 2; i < len(v); i++ {
			if v[i] != ' ' && v[i-1] == ' ' && v[i-2] == ' ' && !slices.Contains(offs, i) {
				t.Errorf("line %d: text at %d, between columns %v:\n%s", n, i, offs, string(v))
			}
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./lab/ui -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestTableDropsEmptyColumnsAndWraps(t *testing.T) {
	var out bytes.Buffer
	o := Buffers(nil, &out, &out)
	o.Color = true
	o.Table([]string{"CHECK", "HINT"}, [][]string{{"root", o.Faint("")}, {"kernel", ""}})
	if strings.Contains(out.String(), "HINT") {
		t.Errorf("an empty column is drawn:\n%s", out.String())
	}
	out.Reset()
	o.Width = 20
	o.Table([]string{"A", "B", "C"}, [][]string{{strings.Repeat("x", 30), o.Red("yy " + strings.Repeat("y", 30)), "z"}})
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if Width(l) > 20 {
			t.Errorf("wider than 20: %q", l)
		}
		if strings.Count(l, "\x1b[31m") != strings.Count(l, reset) {
			t.Errorf("a colour not closed on its line: %q", l)
		}
	}
	if got := Strip(out.String()); strings.Count(got, "x") != 30 || strings.Count(got, "y") != 32 {
		t.Errorf("wrapping lost text:\n%s", got)
	}
}

func TestColumnsFromEnvironment(t *testing.T) {
	t.Setenv("COLUMNS", "")
	if w := fromEnv("COLUMNS", 0); w != 0 {
		t.Errorf("piped, no COLUMNS: width %d, want 0 (no limit)", w)
	}
	if w := fromEnv("COLUMNS", 132); w != 132 {
		t.Errorf("terminal: width %d, want 132", w)
	}
	t.Setenv("COLUMNS", "90")
	if w := fromEnv("COLUMNS", 132); w != 90 {
		t.Errorf("COLUMNS=90: width %d", w)
	}
	t.Setenv("COLUMNS", "wide")
	if w := fromEnv("COLUMNS", 0); w != 0 {
		t.Errorf("COLUMNS=wide: width %d, want it ignored", w)
	}
}

func TestWrapf(t *testing.T) {
	var out bytes.Buffer
	o := Buffers(nil, &out, &out)
	o.Wrapf("\nNext: %s then each step in turn; add --explain to see what a step does first.\n", "sudo underhood chroot (the next one),")
	piped := out.String()
	if strings.Count(piped, "\n") != 2 {
		t.Errorf("piped, a paragraph is wrapped: %q", piped)
	}
	out.Reset()
	o.Width = 40
	o.Wrapf("\nNext: %s then each step in turn; add --explain to see what a step does first.\n", "sudo underhood chroot (the next one),")
	for _, l := range strings.Split(out.String(), "\n") {
		if Width(l) > 40 {
			t.Errorf("wider than 40: %q", l)
		}
	}
	if strings.Join(strings.Fields(out.String()), " ") != strings.Join(strings.Fields(piped), " ") || !strings.HasPrefix(out.String(), "\nNext:") || !strings.HasSuffix(out.String(), "first.\n") {
		t.Errorf("wrapping changed the text: %q", out.String())
	}
}

// A command in a hint stays on one line where it fits, so that it can be
// copied from the terminal (issue 17's walkthrough: "sudo chroot
// /root/container / /bin/busybox sh").
func TestWrapKeepsCommandsWhole(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want []string
	}{
		{"All 3 checks pass: step 2 is done. Next: sudo chroot /root/container /bin/busybox sh (docs/03-chroot.md), then: sudo underhood check 3 --rootfs /root/container", 80,
			[]string{"All 3 checks pass: step 2 is done. Next:", "sudo chroot /root/container /bin/busybox sh (docs/03-chroot.md), then:", "sudo underhood check 3 --rootfs /root/container"}},
		{"The host sees this same process as PID 20610 (in another terminal: ps -o pid,args -p 20610).", 80,
			[]string{"The host sees this same process as PID 20610 (in another terminal:", "ps -o pid,args -p 20610)."}},
		// A quantity stays with its unit.
		{"the payload stayed within its memory, against a limit of 7.0 MiB.", 60,
			[]string{"the payload stayed within its memory, against a limit of", "7.0 MiB."}},
		// An assignment of a command's output is a command too.
		{"Try busybox hostname; busybox ps -A; then the memory hog: toomuch=$(busybox head -c 7500000 /dev/urandom)", 80,
			[]string{"Try busybox hostname; busybox ps -A; then the memory hog:", "toomuch=$(busybox head -c 7500000 /dev/urandom)"}},
		// A quoted script is one command: its ; and && do not end it.
		{"run the fork bomb in a shell of the box: sudo sh -c 'cd /sys/fs/cgroup/pids/box; echo $$ > cgroup.procs; exec sh' then check again", 80,
			[]string{"run the fork bomb in a shell of the box:", "sudo sh -c 'cd /sys/fs/cgroup/pids/box; echo $$ > cgroup.procs; exec sh' then", "check again"}},
		// Wider than a line: continued with \ at its line ends, as a shell
		// continues a command, so that it is still copied whole.
		{"run: sudo underhood run --name a-very-long-name --memory 64M -- /bin/busybox sh", 30,
			[]string{"run:", "sudo underhood run --name \\", "a-very-long-name --memory \\", "64M -- /bin/busybox sh"}},
		// Inside the quotes of a script too: its own shell continues it.
		// A command continued over lines starts its own, whatever fits
		// before it: copied from there, it is the command alone.
		{"run: sudo sh -c 'echo a long script that does not fit one line' now", 30,
			[]string{"run:", "sudo sh -c \\", "'echo a long script that \\", "does not fit one line'", "now"}},
		// After an operator in the quotes, the script goes on anyway.
		{"run: sudo sh -c 'cd /sys/fs/cgroup/pids/box && exec sh' now", 34,
			[]string{"run:", "sudo sh -c \\", "'cd /sys/fs/cgroup/pids/box &&", "exec sh'", "now"}},
	} {
		if got := wrap(c.in, c.n); !slices.Equal(got, c.want) {
			t.Errorf("wrap(%q, %d):\n got %q\nwant %q", c.in, c.n, got, c.want)
		}
		if got := wrap2(c.in, c.n, c.n); !slices.Equal(got, c.want) {
			t.Errorf("wrap2(%q, %d):\n got %q\nwant %q", c.in, c.n, got, c.want)
		}
	}
}
