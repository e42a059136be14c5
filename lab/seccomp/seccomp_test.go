package seccomp

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The child changes its own thread, which must be the one it reports on.
	runtime.LockOSThread()
	if os.Getenv("UNDERHOOD_SECCOMP_TEST") == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child loads the filter, then tries what it refuses and what it allows.
func child() int {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs:", err)
		return 9
	}
	if err := Load(); err != nil {
		fmt.Println("load:", err)
		return 9
	}
	fmt.Println("unshare:", unix.Unshare(unix.CLONE_NEWNS))
	fmt.Println("mount:", unix.Mount("none", "/mnt", "tmpfs", 0, ""))
	fmt.Println("getpid:", unix.Getpid() > 0)
	return 0
}

func TestProgramShape(t *testing.T) {
	p, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	// arch check (3) + load nr (1) + two per refused call + allow.
	if want := 4 + 2*len(Refused) + 1; len(p) != want {
		t.Errorf("%d instructions, want %d", len(p), want)
	}
	if len(p) > 4096 {
		t.Error("longer than the kernel takes")
	}
}

func TestFilterRefusesForReal(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root, so that the refusals are the filter's and not missing privileges (CI runs as root; -short skips it)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "UNDERHOOD_SECCOMP_TEST=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"unshare: operation not permitted", "mount: operation not permitted", "getpid: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}
