package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The container's first process is underhood-init beside underhood when it
// is there and safe, and underhood itself otherwise. A stand-in that only
// says its name shows which one ran.
func TestInitProgramBesideUnderhood(t *testing.T) {
	needLab(t)
	if os.Getenv("UNDERHOOD_TEST_BINARY") != "" {
		t.Skip("a prebuilt underhood: this test copies the one it builds")
	}
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	uh := filepath.Join(dir, "underhood")
	copyFile(t, binary, uh, 0o755)
	fake := filepath.Join(dir, "underhood-init")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho FAKE-INIT >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() (string, int) {
		cmd := exec.Command(uh, "--workdir", workdir, "unshare", "--", "/bin/busybox", "true")
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := exitCode(cmd.Run())
		return out.String(), code
	}
	if out, code := run(); code == 0 || !strings.Contains(out, "FAKE-INIT") {
		t.Errorf("with underhood-init beside it: exit %d, want the stand-in to run:\n%s", code, out)
	}
	assertClean(t)
	// Group-writable: anyone in the group could swap it; underhood runs itself.
	if err := os.Chmod(fake, 0o775); err != nil {
		t.Fatal(err)
	}
	if out, code := run(); code != 0 || strings.Contains(out, "FAKE-INIT") {
		t.Errorf("group-writable underhood-init: exit %d, want underhood itself as init:\n%s", code, out)
	}
	assertClean(t)
	if err := os.Remove(fake); err != nil {
		t.Fatal(err)
	}
	if out, code := run(); code != 0 {
		t.Errorf("no underhood-init: exit %d\n%s", code, out)
	}
	assertClean(t)
}

// The real underhood-init says what to do when run by hand, and when it
// meets an underhood of another build.
func TestInitProgramByHand(t *testing.T) {
	if os.Getenv("UNDERHOOD_TEST_BINARY") != "" {
		t.Skip("a prebuilt underhood")
	}
	init := filepath.Join(filepath.Dir(binary), "underhood-init")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "underhood starts it, not a person"},
		{[]string{"__underhood_init_0__", "0", "/", "", "--", "true"}, 1, "build both again (make build)"},
	} {
		var out bytes.Buffer
		cmd := exec.Command(init, tc.args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if code := exitCode(cmd.Run()); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("underhood-init %q: exit %d, want %d and %q:\n%s", tc.args, code, tc.code, tc.want, out.String())
		}
	}
}
