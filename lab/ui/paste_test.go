package ui

import (
	"os/exec"
	"strings"
	"testing"
)

// A hint copied from the terminal as it is wrapped, lines and indents
// included, must run as the command it was: pasted into a shell it parses,
// and a quoted sh -c script inside it parses too (walkthrough 8: check 6's
// hog hint broke after ">>" inside its quotes, and sh said "newline
// unexpected"; check 7's hint joined two commands with "; then").
func TestWrappedHintsPasteAsTyped(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	hints := []string{
		"  OOM kills: run the article's memory hog in it: sudo sh -c 'echo $$ >> /sys/fs/cgroup/memory/busybox/tasks && toomuch=$(head -c 7500000 /dev/urandom)'",
		"  cgroup busybox: move them out, as the script's last lines do (a shell you typed the script into is one of them): echo 11099 | sudo tee /sys/fs/cgroup/memory/cgroup.procs && sudo rmdir /sys/fs/cgroup/memory/busybox-11099",
		"  pids.events: run the fork bomb in a shell of the box: sudo sh -c 'cd /sys/fs/cgroup/pids/box; echo $$ > cgroup.procs; exec sh' then check again",
	}
	for _, h := range hints {
		// From 48: below, a path alone is wider than the line.
		for n := 48; n <= 100; n += 2 {
			lines := wrap2(strings.TrimLeft(h, " "), n-2, n-4)
			cmd := pasted(lines)
			if cmd == "" {
				t.Fatalf("no command in %q", lines)
			}
			if out, err := exec.Command("sh", "-n", "-c", cmd).CombinedOutput(); err != nil {
				t.Errorf("at %d columns the copied command does not parse: %s\n%s", n, out, strings.Join(lines, "\n"))
			}
			if i, j := strings.Index(cmd, "'"), strings.LastIndex(cmd, "'"); i >= 0 && j > i {
				if out, err := exec.Command("sh", "-n", "-c", cmd[i+1:j]).CombinedOutput(); err != nil {
					t.Errorf("at %d columns the quoted script does not parse: %s\n%s", n, out, strings.Join(lines, "\n"))
				}
			}
		}
	}
}

// pasted is what a person copies: from the first sudo or echo to the end
// of the command (a line that does not end in " \" or inside quotes), each
// line's indent left as the terminal shows it.
func pasted(lines []string) string {
	var got []string
	open := false
	for _, l := range lines {
		if len(got) == 0 {
			i := strings.Index(l, "sudo ")
			if k := strings.Index(l, "echo "); k >= 0 && (i < 0 || k < i) {
				i = k
			}
			if i < 0 {
				continue
			}
			l = l[i:]
		}
		got = append(got, "    "+l)
		open = open != (strings.Count(l, "'")%2 == 1)
		if !open && !strings.HasSuffix(l, " \\") {
			break
		}
	}
	s := strings.Join(got, "\n")
	// The command ends where the hint's words go on: "… then check again".
	if i := strings.Index(s, "' then"); i >= 0 {
		s = s[:i+1]
	}
	return s
}
