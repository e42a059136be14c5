package caps

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The child changes its own thread, which must be the one it reports on.
	runtime.LockOSThread()
	if os.Getenv("UNDERHOOD_CAPS_TEST") == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	if err := Drop(RuncDefault); err != nil {
		fmt.Println("drop:", err)
		return 9
	}
	if err := NoNewPrivs(); err != nil {
		fmt.Println(err)
		return 9
	}
	status, _ := os.ReadFile("/proc/self/status")
	fmt.Print(string(status))
	dir, _ := os.MkdirTemp("", "caps-")
	defer os.Remove(dir)
	fmt.Println("mount:", unix.Mount("none", dir, "tmpfs", 0, ""))
	fmt.Println("mknod:", unix.Mknod(dir+"/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	fmt.Println("chroot:", unix.Chroot(dir))
	return 0
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(Mask(RuncDefault)), ","); got != "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE" {
		t.Errorf("names: %s", got)
	}
	if Mask(RuncDefault) != 0x20000420 {
		t.Errorf("mask %#x, want 0x20000420", Mask(RuncDefault))
	}
	if Name(40) != "CAP_CHECKPOINT_RESTORE" || Name(63) != "CAP_63" {
		t.Errorf("Name: %s %s", Name(40), Name(63))
	}
}

// After Drop, the kernel shows exactly runc's set, and root can no longer
// mount, make device nodes or chroot.
func TestDropForReal(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root, to have capabilities to drop (CI runs as root; -short skips it)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "UNDERHOOD_CAPS_TEST=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := fmt.Sprintf("%016x", Mask(RuncDefault))
	for _, field := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh"} {
		if v := statusField(string(out), field); v != want {
			t.Errorf("%s: %s, want %s", field, v, want)
		}
	}
	if v := statusField(string(out), "CapAmb"); v != "0000000000000000" {
		t.Errorf("CapAmb: %s", v)
	}
	if v := statusField(string(out), "NoNewPrivs"); v != "1" {
		t.Errorf("NoNewPrivs: %s", v)
	}
	for _, w := range []string{"mount: operation not permitted", "mknod: operation not permitted", "chroot: operation not permitted"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("want %q", w)
		}
	}
	if _, err := strconv.ParseUint(want, 16, 64); err != nil {
		t.Fatal(err)
	}
}

func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
