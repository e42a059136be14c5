package ui

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// A shell way printed at any width runs as written when copied from the
// screen: each comment line starts with "#", each command continues with
// " \" and reads back as the command it was, and a script that spans lines
// gets no "$ " inside its quotes (walkthrough 10: the tour's --links
// command wrapped inside a comment, a command's comment wrapped onto a line
// that ran, a grep line wrapped without "\", and the pivot_root script's
// lines had a "$ " each).
func TestShellWayPastesAsTyped(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	lines := []string{
		"# what --links adds, a link per BusyBox command:",
		"for a in $(bin/busybox --list); do [ $a = busybox ] || ln -s busybox bin/$a; done",
		`sudo sh -c "echo $$ > /sys/fs/cgroup/memory/busybox-$$/tasks" # this shell, and all it starts, in the cgroup`,
		"# cgroup v2 (one directory; pids and cpu enabled in the parent's cgroup.subtree_control):",
		"grep max /sys/fs/cgroup/box/pids.events; grep throttled /sys/fs/cgroup/box/cpu.stat",
		"sudo unshare -m -p -f --mount-proc=$PWD/proc sh -ec '",
		"  mount --make-rprivate /; mount --rbind . .; cd \"$PWD\"",
		"  mkdir -p .oldroot; pivot_root . .oldroot; cd /",
		"  exec /bin/busybox sh -c \"busybox umount -l /.oldroot &&",
		"    busybox rmdir /.oldroot && exec busybox sh\"'",
		"/ # busybox ps -A         # only PID 1: the shell",
		"sudo sh -c 'echo $$ > /sys/fs/cgroup/pids/box/cgroup.procs && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null",
	}
	script := "sudo unshare -m -p -f --mount-proc=$PWD/proc sh -ec ' mount --make-rprivate /; mount --rbind . .; cd \"$PWD\" mkdir -p .oldroot; pivot_root . .oldroot; cd / exec /bin/busybox sh -c \"busybox umount -l /.oldroot && busybox rmdir /.oldroot && exec busybox sh\"'"
	want := []string{lines[1], strings.TrimSuffix(lines[2], " # this shell, and all it starts, in the cgroup"), lines[4], script, "busybox ps -A", lines[11]}
	// From 64: below, a path or a script's line alone is wider than a line.
	for n := 64; n <= 100; n += 2 {
		var b bytes.Buffer
		o := &IO{Out: &b, Width: n}
		o.Shell(2, "/ # ", lines)
		out := strings.TrimRight(b.String(), "\n")
		var got []string
		var cmd []string
		inScript := false
		for _, l := range strings.Split(out, "\n") {
			if w := Width(l); w > n {
				t.Errorf("at %d columns a line is %d wide: %q", n, w, l)
			}
			s := strings.TrimLeft(l, " ")
			switch {
			case len(cmd) > 0:
				cmd = append(cmd, s)
			case strings.HasPrefix(s, "# "):
				continue
			case strings.HasPrefix(s, "$ "):
				cmd = []string{strings.TrimPrefix(s, "$ ")}
			case strings.HasPrefix(s, "/ # "):
				cmd = []string{strings.TrimPrefix(s, "/ # ")}
			default:
				t.Fatalf("at %d columns a line is neither a comment nor a command's start: %q\n%s", n, l, out)
			}
			last := cmd[len(cmd)-1]
			if strings.Count(last, "'")%2 == 1 {
				inScript = !inScript
			}
			if strings.HasSuffix(last, " \\") || inScript {
				continue
			}
			c := strings.Join(cmd, "\n")
			if err := exec.Command("sh", "-n", "-c", c).Run(); err != nil {
				t.Errorf("at %d columns %q does not parse as sh: %v\n%s", n, c, err, out)
			}
			c = strings.ReplaceAll(c, " \\\n", " ")
			if i := strings.Index(c, "  #"); i >= 0 {
				c = c[:i]
			}
			got = append(got, strings.Join(strings.Fields(c), " "))
			cmd = nil
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("at %d columns the commands read back are\n%s\nnot\n%s\nscreen:\n%s", n, strings.Join(got, "\n"), strings.Join(want, "\n"), out)
		}
	}
}
