package guide

import "testing"

func TestNormalise(t *testing.T) {
	same := [][2]string{
		{"The host sees this same process as PID 22898 (in another terminal: ps -o pid,args -p 22898).",
			"The host sees this same process as PID 4111 (in another terminal: ps -o pid,args -p 4111)."},
		{"container box-a5903946a0: limit 7.0 MiB, host PID 23006.", "container box-0123456789: limit 7.0 MiB, host PID 99."},
		{"bin/busybox  1.9 MiB, static ELF", "bin/busybox      1.1 MiB,   static ELF"},
		{"Downloaded 1.1 MiB in 0.4s", "Downloaded 1.1 MiB in 12.0s"},
	}
	for _, p := range same {
		if normalise(p[0], false) != normalise(p[1], false) {
			t.Errorf("differ:\n%q\n%q", normalise(p[0], false), normalise(p[1], false))
		}
	}
	same = [][2]string{
		{"    7 0        busybox ps -A", "   10 0        busybox ps -A"},
		{"ended 1 process in the cgroup (oom_kill = 1)", "ended 2 processes in the cgroup (oom_kill = 2)"},
	}
	for _, p := range same {
		if normalise(p[0], false) != normalise(p[1], false) {
			t.Errorf("differ:\n%q\n%q", normalise(p[0], false), normalise(p[1], false))
		}
	}
	differ := [][2]string{
		{"    1 0        busybox ps -A", "    7 0        busybox ps -A"},
		{"oom_kill 0", "oom_kill 1"},
		{"Exit status 137", "Exit status 0"},
		{"pid=1", "pid=2"},
	}
	for _, p := range differ {
		if normalise(p[0], false) == normalise(p[1], false) {
			t.Errorf("the same: %q and %q", p[0], p[1])
		}
	}
	if normalise("81 processes", true) != normalise("140 processes", true) {
		t.Error("loose still counts numbers")
	}
	// ps pads PIDs on the left: a shorter one must not make a difference.
	if normalise("11838 /bin/busybox sleep 3", true) != normalise("  903 /bin/busybox sleep 3", true) {
		t.Error("loose counts the padding of a number")
	}
}
