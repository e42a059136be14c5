package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/container"
)

// The CLI tests run the real binary, as a user would, with colour off.
var (
	binary  string // the built underhood
	workdir string // a lab prepared with steps 1–2 (root only)
	labErr  error  // why the lab could not be prepared
	// cgParent keeps this test binary's cgroups apart from everyone else's,
	// under the one parent named underhood.
	cgParent = container.RandomName("underhood/clitest")
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "underhood-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Open to other users' walk (not their reading): the root of a user
	// namespace's container is nobody on the host and must reach its root.
	if err := os.Chmod(tmp, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// UNDERHOOD_TEST_BINARY names a prebuilt underhood to test instead of
	// building one: scripts/vm-test.sh's VM has no Go.
	binary = os.Getenv("UNDERHOOD_TEST_BINARY")
	if binary != "" {
		if fi, err := os.Stat(binary); err != nil || !filepath.IsAbs(binary) || fi.Mode()&0o111 == 0 {
			fmt.Fprintf(os.Stderr, "UNDERHOOD_TEST_BINARY=%q: want the absolute path of an executable underhood\n", binary)
			os.Exit(1)
		}
	} else {
		// underhood and, beside it as make build puts it, its small init
		// program (lab/ns InitProgram), which the containers start.
		binary = filepath.Join(tmp, "underhood")
		build := exec.Command("go", "build", "-o", tmp+"/", ".", "../underhood-init")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build underhood: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	workdir = filepath.Join(tmp, "lab")
	flag.Parse()
	if asRoot() {
		labErr = prepareLab()
	}
	code := m.Run()
	if asRoot() {
		removeCgroupParent()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func prepareLab() error {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return fmt.Errorf("no /bin/busybox (apt-get install busybox-static): %w", err)
	}
	for _, args := range [][]string{{"download", "--from", "/bin/busybox"}, {"rootfs"}} {
		r := runUH(nil, args...)
		if r.code != 0 {
			return fmt.Errorf("underhood %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
	return nil
}

func removeCgroupParent() {
	// runc makes the parent in every v1 hierarchy, not only memory's.
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgParent))
	for _, d := range append(dirs, filepath.Join("/sys/fs/cgroup", cgParent)) {
		_ = os.Remove(d)
	}
}

type result struct {
	out, err string
	code     int
}

// runUH runs underhood with the test lab as work directory.
func runUH(t *testing.T, args ...string) result {
	if t != nil {
		t.Helper()
	}
	return runUHIn(t, workdir, args...)
}

// runUHIn runs underhood with wd as work directory.
func runUHIn(t *testing.T, wd string, args ...string) result {
	if t != nil {
		t.Helper()
	}
	return runCmd(exec.Command(binary, append([]string{"--workdir", wd}, args...)...))
}

// runCmd runs an underhood command without colour and collects its output
// and exit status (-1 when it could not run).
func runCmd(cmd *exec.Cmd) result {
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.err += err.Error()
	}
	return r
}

// needLab skips, loudly, where the root-only tests cannot run.
// asRoot says whether the root tests run: as root, and not with -short
// (go test -short runs only what a normal user can).
func asRoot() bool { return os.Geteuid() == 0 && !testing.Short() }

func needLab(t *testing.T) {
	t.Helper()
	if !asRoot() {
		t.Skip("requires root: namespaces, mounts and cgroups (CI runs as root; -short skips it)")
	}
	if labErr != nil {
		t.Fatalf("lab not prepared: %v", labErr)
	}
}

// assertClean checks that nothing of the lab is left on the machine: no
// mount below the work directory, no run directory, no process whose root
// or working directory is inside the lab, no cgroup under this test's
// parent.
func assertClean(t *testing.T) {
	t.Helper()
	assertCleanIn(t, workdir)
}

// assertCleanIn is assertClean for the lab in the work directory wd.
func assertCleanIn(t *testing.T, wd string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := leftovers(wd)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left on the machine:\n  %s", strings.Join(left, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leftovers(workdir string) []string {
	var left []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, workdir) {
			left = append(left, "mount: "+l)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(workdir, "runs")); len(ents) > 0 {
		for _, e := range ents {
			left = append(left, "run directory: "+e.Name())
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		ents, _ := os.ReadDir(filepath.Join(root, cgParent))
		for _, e := range ents {
			if e.IsDir() {
				left = append(left, "cgroup: "+filepath.Join(root, cgParent, e.Name()))
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, l := range []string{"root", "cwd"} {
			if dst, err := os.Readlink(filepath.Join(p, l)); err == nil && strings.HasPrefix(dst, workdir) {
				left = append(left, fmt.Sprintf("process %s (%s in %s)", filepath.Base(p), l, dst))
			}
		}
	}
	return left
}
