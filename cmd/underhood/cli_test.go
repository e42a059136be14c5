package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// These need neither root nor a lab: the command surface itself.

func TestHelpListsEveryCommand(t *testing.T) {
	r := runUH(t, "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, c := range []string{"download", "rootfs", "chroot", "mount-proc", "unshare", "cgroup", "run", "steps", "step", "doctor", "ps", "cleanup"} {
		if !strings.Contains(r.out, "\n  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, r.out)
		}
	}
	if strings.Contains(r.out, "\x1b[") {
		t.Error("colour codes in help with NO_COLOR set")
	}
}

func TestExplainTouchesNothing(t *testing.T) {
	wd := filepath.Join(t.TempDir(), "lab")
	for _, c := range [][]string{{"download", "--explain"}, {"rootfs", "--explain"}, {"chroot", "--explain"},
		{"mount-proc", "--explain"}, {"unshare", "--explain"}, {"cgroup", "--explain"}, {"run", "--explain"}, {"step", "2", "--explain"}} {
		cmd := exec.Command(binary, append([]string{"--workdir", wd}, c...)...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%v: %v\n%s", c, err, out)
			continue
		}
		for _, want := range []string{"What it does", "The shell way", "What underhood does (system calls)", "Nothing was changed"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: no %q in\n%s", c, want, out)
			}
		}
		if _, err := os.Stat(wd); !os.IsNotExist(err) {
			t.Fatalf("%v created the work directory", c)
		}
	}
	// The article's own commands are shown for the step.
	r := runUH(t, "download", "--explain")
	if !strings.Contains(r.out, "echo Hello from BusyBox!") {
		t.Errorf("step 1 explain lacks the article's hello:\n%s", r.out)
	}
	r = runUH(t, "rootfs", "--explain")
	if !strings.Contains(r.out, "mkdir -p bin dev etc proc sys") {
		t.Errorf("step 2 explain lacks the directory layout:\n%s", r.out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, c := range [][]string{{"--bogus"}, {"nosuchcommand"}, {"steps", "extra"}, {"download", "--url", "http://x/busybox"},
		{"download", "--sha256", "abc"}, {"step"}, {"step", "x"}, {"step", "0"}, {"chroot", "--memory", "7M"}} {
		r := runUH(t, c...)
		if c[0] == "step" && len(c) == 1 {
			if r.code != 0 {
				t.Errorf("'step' alone should print its help: exit %d", r.code)
			}
			continue
		}
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q: want exit 2 and one line", c, r.code, r.err)
		}
	}
}

func TestStepNIsTheNamedCommand(t *testing.T) {
	needLab(t)
	r := runUH(t, "step", "5", "--", "/bin/busybox", "sh", "-c", "echo pid=$$")
	if r.code != 0 || !strings.Contains(r.out, "pid=1") {
		t.Errorf("step 5: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

func TestStepsShowsState(t *testing.T) {
	needLab(t)
	r := runUH(t, "steps")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, want := range []string{`(?m)^1 +Download BusyBox +download +done$`, `(?m)^2 +Prepare the root filesystem +rootfs +done$`,
		`(?m)^7 +Put it all together: a full container +run +(ready|ran .* ago|ran just now)$`, `(?m)^ +Part 2: beyond the article$`} {
		if !regexp.MustCompile(want).MatchString(r.out) {
			t.Errorf("steps lacks a row matching %s:\n%s", want, r.out)
		}
	}
	j := runUH(t, "steps", "--json")
	if !strings.Contains(j.out, `"name": "download"`) || !strings.Contains(j.out, `"done": true`) {
		t.Errorf("steps --json:\n%s", j.out)
	}
	empty := exec.Command(binary, "--workdir", filepath.Join(t.TempDir(), "none"), "steps")
	empty.Env = append(os.Environ(), "NO_COLOR=1")
	out, _ := empty.Output()
	if !strings.Contains(string(out), "Next: sudo underhood --workdir ") || !strings.Contains(string(out), " download (step 1)") {
		t.Errorf("a fresh machine is not pointed at step 1:\n%s", out)
	}
}

// Not root: a one-line error that says sudo, exit 2, nothing created.
func TestNotRootSaysSudo(t *testing.T) {
	if !asRoot() {
		t.Skip("requires root to switch to another user")
	}
	dir, err := os.MkdirTemp("", "underhood-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "underhood")
	data, _ := os.ReadFile(binary)
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"chroot", "mount-proc", "unshare", "cgroup", "run", "cleanup"} {
		args := []string{"--workdir", filepath.Join(dir, "lab"), step}
		if step == "cleanup" {
			args = append(args, "--all")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"NO_COLOR=1", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 2 || !strings.Contains(string(out), "'sudo underhood ") || !strings.Contains(string(out), step+"'") && !strings.Contains(string(out), step+" --all'") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("%s as nobody: exit %d, %q", step, exitCode(err), out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lab")); !os.IsNotExist(err) {
		t.Error("a refused command created the work directory")
	}
}
