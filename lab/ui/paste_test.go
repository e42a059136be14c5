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
	hints := []struct{ hint, want string }{
		{"  OOM kills: run the article's memory hog in it: sudo sh -c 'echo $$ >> /sys/fs/cgroup/memory/busybox/tasks && toomuch=$(head -c 7500000 /dev/urandom)'",
			"sudo sh -c 'echo $$ >> /sys/fs/cgroup/memory/busybox/tasks && toomuch=$(head -c 7500000 /dev/urandom)'"},
		{"  cgroup busybox: move them out, as the script's last lines do (a shell you typed the script into is one of them): echo 11099 | sudo tee /sys/fs/cgroup/memory/cgroup.procs && sudo rmdir /sys/fs/cgroup/memory/busybox-11099",
			"echo 11099 | sudo tee /sys/fs/cgroup/memory/cgroup.procs && sudo rmdir /sys/fs/cgroup/memory/busybox-11099"},
		{"  pids.events: run the fork bomb in a shell of the box: sudo sh -c 'cd /sys/fs/cgroup/pids/box; echo $$ > cgroup.procs; exec sh' then check again",
			"sudo sh -c 'cd /sys/fs/cgroup/pids/box; echo $$ > cgroup.procs; exec sh'"},
		// Walkthrough 9: the command in parentheses broke without "\",
		// and so did underhood's own, named without sudo.
		{"  runc's bounding set: to judge your own: start the page's shell, keep it open (sudo setpriv --no-new-privs --bounding-set=-all,+audit_write,+kill,+net_bind_service --inh-caps=-all -- /bin/busybox sh), then, from another terminal: sudo underhood check 10",
			"sudo setpriv --no-new-privs --bounding-set=-all,+audit_write,+kill,+net_bind_service --inh-caps=-all -- /bin/busybox sh"},
		{"Next: as a user, without sudo: underhood --workdir /tmp/nobody-home/underhood-lab run --rootless (docs/13-user-namespace.md); with root, step 2: sudo underhood rootfs",
			"underhood --workdir /tmp/nobody-home/underhood-lab run --rootless"},
		{"  user namespace: in the page's root shell (sudo bash), start a container that waits, and check while it runs: unshare --user --pid --mount --uts --fork sleep 1000 &",
			"unshare --user --pid --mount --uts --fork sleep 1000 &"},
		// Walkthrough 11: the redirection after the quotes went on a line
		// of its own, without "\", and ran as a command.
		{"  forks refused: run the fork bomb in it: sudo sh -c 'echo $$ > /sys/fs/cgroup/pids/box/cgroup.procs && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null",
			"sudo sh -c 'echo $$ > /sys/fs/cgroup/pids/box/cgroup.procs && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null"},
		{"No lab containers. Start one with 'underhood --workdir /tmp/nobody-home/underhood-lab run --rootless'.",
			"underhood --workdir /tmp/nobody-home/underhood-lab run --rootless"},
		// Walkthrough 13: check 2's hint, a command after its row's name,
		// broke as prose: "sys" went on a line of its own.
		{"  directory: mkdir -p /root/fresh && cd /root/fresh && mkdir -p bin dev etc proc sys",
			"mkdir -p /root/fresh && cd /root/fresh && mkdir -p bin dev etc proc sys"},
		// Walkthrough 14: the page makes ~/Downloads first, and so does the
		// hint.
		{"  file: download it: mkdir -p /root/Downloads && wget -O /root/Downloads/busybox https://busybox.net/downloads/binaries/1.35.0-x86_64-linux-musl/busybox; or copy the static one of busybox-static: mkdir -p /root/Downloads && cp /bin/busybox /root/Downloads/busybox",
			"mkdir -p /root/Downloads && wget -O /root/Downloads/busybox https://busybox.net/downloads/binaries/1.35.0-x86_64-linux-musl/busybox;"},
	}
	for _, h := range hints {
		// From 48: below, a path alone is wider than the line.
		for n := 48; n <= 100; n += 2 {
			if tooLong(h.want, n-4) {
				continue
			}
			lines := wrap2(strings.TrimLeft(h.hint, " "), n-2, n-4)
			cmd := pasted(lines, strings.Fields(h.want)[0]+" ")
			if cmd == "" {
				t.Fatalf("no command in %q", lines)
			}
			if got := typed(cmd); !strings.HasPrefix(got, h.want) {
				t.Errorf("at %d columns the copied command is %q, not %q:\n%s", n, got, h.want, strings.Join(lines, "\n"))
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

// pasted is what a person copies: from the first start (the command's
// first word and a space) to the end
// of the command (a line that does not end in " \" or inside quotes), each
// line's indent left as the terminal shows it.
func pasted(lines []string, start string) string {
	var got []string
	open, quoted, paren := false, false, false
	for _, l := range lines {
		if len(got) == 0 {
			i := strings.Index(l, start)
			if i < 0 {
				continue
			}
			// A command quoted in prose: "Start one with 'underhood …'."
			quoted = i > 0 && l[i-1] == '\''
			open = quoted
			paren = i > 0 && l[i-1] == '('
			l = l[i:]
		}
		got = append(got, "    "+l)
		open = open != (strings.Count(l, "'")%2 == 1)
		if !open && !strings.HasSuffix(l, " \\") {
			break
		}
	}
	s := strings.Join(got, "\n")
	if i := strings.LastIndex(s, "'"); quoted && i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ")"); paren && i >= 0 {
		s = s[:i]
	}
	// The command ends where the hint's words go on: "… then check again".
	if i := strings.Index(s, "' then"); i >= 0 {
		s = s[:i+1]
	}
	if i := strings.Index(s, " (docs/"); i >= 0 {
		s = s[:i]
	}
	return s
}

// typed is the command a shell reads from pasted lines: a line ending in
// " \" goes on on the next, and so does one inside quotes.
func typed(pasted string) string {
	s := strings.ReplaceAll(pasted, " \\\n", " ")
	s = strings.TrimLeft(s, "'")
	return strings.Join(strings.Fields(s), " ")
}

// tooLong reports whether a word of cmd and its " \\" are wider than n:
// such a command is broken between words, as prose is.
func tooLong(cmd string, n int) bool {
	for _, w := range strings.Fields(cmd) {
		if len(w)+2 > n {
			return true
		}
	}
	return false
}

// Prose after a command ends it: two commands a hint joins with "and"
// are two, not one continued with " \\" (walkthrough 13: check 5's "sudo
// underhood check 2 --rootfs … and sudo underhood check 3 --rootfs …",
// pasted, ran as one check with five arguments), and "cd ~/container and
// run the page's …" is a cd and prose (walkthrough 14: check 8's hint had
// a " \\" after "run the").
func TestProseBetweenCommandsEndsThem(t *testing.T) {
	for _, c := range []struct {
		hint  string
		cmds  []string
		prose string // never on a line that ends in " \\"
	}{
		{"proc: finish it first: sudo underhood check 2 --rootfs /root/half and sudo underhood check 3 --rootfs /root/half",
			[]string{"sudo underhood check 2 --rootfs /root/half", "sudo underhood check 3 --rootfs /root/half"}, " and "},
		{"a process in the root: cd ~/container and run the page's sudo unshare -m -p -f --mount-proc=$PWD/proc sh -ec '…pivot_root…' (keep its shell open); then, from another terminal: sudo underhood check 8 --rootfs /root/container",
			[]string{"cd ~/container", "sudo underhood check 8 --rootfs /root/container"}, "run the"},
	} {
		for n := 48; n <= 120; n += 2 {
			lines := wrap2(c.hint, n, n-4)
			for _, want := range c.cmds {
				cmd := typed(pasted(lines, want[:min(len(want), 22)]))
				if !strings.HasPrefix(cmd, want) {
					t.Errorf("at %d columns the copied command is %q, not %q:\n%s", n, cmd, want, strings.Join(lines, "\n"))
				}
			}
			for _, l := range lines {
				if strings.HasSuffix(l, " \\") && strings.Contains(l, c.prose) {
					t.Errorf("at %d columns prose is continued as a command:\n%s", n, strings.Join(lines, "\n"))
					break
				}
			}
		}
	}
}
