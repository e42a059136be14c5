package steps

import "testing"

// Only a shell without a script gets the terminal to itself: a step's
// scripted demo stays in underhood's group, where Ctrl-C stops the step
// (walkthrough 15: it ended the fork bomb's children, and the step went on).
func TestInteractive(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want bool
	}{
		{nil, true},
		{[]string{"/bin/busybox", "sh"}, true},
		{[]string{"/bin/sh"}, true},
		{[]string{"/bin/busybox", "sh", "-i"}, true},
		{[]string{"/bin/busybox", "sh", "-c", StormScript}, false},
		{[]string{"/bin/busybox", "sh", "-ec", "busybox ls"}, false},
		{[]string{"/bin/underhood", "escape"}, false},
		{[]string{"/bin/sh", "script.sh"}, false},
		{[]string{"/bin/busybox", "sleep", "30"}, false},
	} {
		if got := interactive(c.argv); got != c.want {
			t.Errorf("interactive(%q) = %v, want %v", c.argv, got, c.want)
		}
	}
}
