package escape_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/escape"
	"github.com/underhood/underhood/lab/pivot"
)

// The child side: UNDERHOOD_ESCAPE_TEST=MODE runs in a process of its own
// (chroot and pivot_root change it for good), then reports the outcome.
func TestMain(m *testing.M) {
	// The child changes its own thread, which must be the one it reports on.
	runtime.LockOSThread()
	if mode := os.Getenv("UNDERHOOD_ESCAPE_TEST"); mode != "" {
		os.Exit(child(mode, os.Getenv("ESCAPE_ROOT"), os.Getenv("ESCAPE_TARGET")))
	}
	os.Exit(m.Run())
}

func child(mode, root, target string) int {
	var err error
	switch mode {
	case "chroot":
		err = unix.Chroot(root)
	case "pivot":
		if err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err == nil {
			err = pivot.Root(root)
		}
	case "nochroot":
		if err = unix.Chroot(root); err == nil {
			err = unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_CHROOT, 0, 0, 0)
			if err == nil {
				err = dropEffective(unix.CAP_SYS_CHROOT)
			}
		}
	}
	if err == nil {
		err = unix.Chdir("/")
	}
	if err != nil {
		fmt.Println("setup:", err)
		return 9
	}
	r := escape.Try(target)
	fmt.Printf("found=%q err=%v\n", r.Found, r.Err)
	return r.Outcome.ExitCode()
}

func dropEffective(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[c/32].Effective &^= 1 << (c % 32)
	data[c/32].Permitted &^= 1 << (c % 32)
	return unix.Capset(&hdr, &data[0])
}

func run(t *testing.T, mode, root, target string, clone uintptr) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "UNDERHOOD_ESCAPE_TEST="+mode, "ESCAPE_ROOT="+root, "ESCAPE_TARGET="+target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: clone, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("%s: %v", mode, err)
	}
	return 0, string(out)
}

// The escape works under chroot, is held by pivot_root and refused
// without CAP_SYS_CHROOT; none of it leaves a mount or a directory behind.
func TestEscapeChrootThenPivotRoot(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: chroot, mount namespaces, pivot_root (CI runs as root; -short skips it)")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "host-secret")
	if err := os.WriteFile(marker, []byte("the host's file\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out := run(t, "chroot", root, marker, 0)
	if code != escape.Escaped.ExitCode() || !strings.Contains(out, `found="the host's file"`) {
		t.Errorf("under chroot: exit %d, %s; want the marker read", code, out)
	}
	code, out = run(t, "pivot", root, marker, unix.CLONE_NEWNS)
	if code != escape.Held.ExitCode() || strings.Contains(out, "host's file") {
		t.Errorf("under pivot_root: exit %d, %s; want held", code, out)
	}
	// Where the root has a file of the same path, the walk that ended in
	// its own root reads that file: held all the same, not an escape; and
	// so is a walk that began outside any chroot (walkthrough 10: escape
	// on the host said "Escaped").
	own := filepath.Join(root, marker)
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, []byte("the container's own file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = run(t, "pivot", root, marker, unix.CLONE_NEWNS)
	if code != escape.Held.ExitCode() || !strings.Contains(out, "began in") {
		t.Errorf("under pivot_root, with its own file at the path: exit %d, %s; want held, at the root it began in", code, out)
	}
	if err := os.RemoveAll(filepath.Join(root, strings.Split(marker, "/")[1])); err != nil {
		t.Fatal(err)
	}
	code, out = run(t, "none", "", marker, unix.CLONE_NEWNS)
	if code != escape.Held.ExitCode() || !strings.Contains(out, "began in") {
		t.Errorf("in no chroot: exit %d, %s; want held, at the root it began in", code, out)
	}
	code, out = run(t, "nochroot", root, marker, 0)
	if code != escape.Refused.ExitCode() || !strings.Contains(out, "operation not permitted") {
		t.Errorf("without CAP_SYS_CHROOT: exit %d, %s; want refused", code, out)
	}

	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), dir) {
		t.Errorf("a mount is left below %s", dir)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		t.Errorf("left in the root: %s", e.Name())
	}
}
