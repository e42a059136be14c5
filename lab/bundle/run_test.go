package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRuntimesRunTheImage(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		t.Run(rt, func(t *testing.T) { testRuntime(t, rt) })
	}
}

func testRuntime(t *testing.T, rt string) {
	if c := hybridControllers(); rt == "crun" && c != "" {
		// Even with --cgroup-manager=disabled, crun 1.8 stops at detection.
		t.Skipf("crun 1.8 (Debian 12) refuses a hybrid cgroup layout whose cgroup2 has controllers (here: %s); the v2 VM test runs it", c)
	}
	id := uniqueID(rt)
	o := Options{Name: id, Hostname: "lab", Network: true, Memory: 64 << 20, Pids: 32,
		Env:  []string{"PATH=/bin"},
		Args: []string{"/bin/busybox", "sh", "-c", "echo hello-from-" + "$(hostname); read x; exit 7"}}
	b := runtimeBundle(t, rt, o)
	keepParents(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() { runtimeCmd(context.Background(), rt, state, "delete", "--force", id).Run() })

	cmd := runtimeCmd(ctx, rt, state, "run", "--bundle", b, id)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// While the payload waits on stdin, the limits are visible from the host.
	mem, pids := limitFiles(id)
	if err := assertFile(mem, "67108864", exited); err == nil {
		if err := assertFile(pids, "32", exited); err != nil {
			t.Error(err)
		}
	} else {
		t.Error(err)
	}
	stdin.Close()
	err = <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("%s run = %v, want exit status 7 passed through\nstderr: %s", rt, err, errOut.String())
	}
	if got := out.String(); got != "hello-from-lab\n" {
		t.Errorf("%s run printed %q, want %q (stderr %q)", rt, got, "hello-from-lab\n", errOut.String())
	}
	assertGone(t, rt, state, id)
}

// assertFile waits up to 60 s for path to hold want, while the runtime
// runs (as long as the runtime itself may take, on an emulated CPU).
func assertFile(path, want string, exited chan error) error {
	var last string
	for range 1200 {
		data, err := os.ReadFile(path)
		last = strings.TrimSpace(string(data))
		if err == nil && last == want {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // for the caller's Wait
			return fmt.Errorf("runtime exited (%v) before %s held %q", err, path, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s = %q, want %q", path, last, want)
}

// hybridControllers lists the controllers on a hybrid layout's cgroup2
// mount, /sys/fs/cgroup/unified ("" when the layout is not hybrid).
func hybridControllers() string {
	data, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return strings.TrimSpace(string(data))
}
