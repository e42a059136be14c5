package masked

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
)

func TestMain(m *testing.M) {
	runtime.LockOSThread()
	if root := os.Getenv("UNDERHOOD_MASKED_TEST"); root != "" {
		os.Exit(child(root))
	}
	os.Exit(m.Run())
}

// child: a private mount namespace, proc in root/proc, then Apply.
func child(root string) int {
	proc := filepath.Join(root, "proc")
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("private:", err)
		return 9
	}
	if err := unix.Mount("proc", proc, "proc", 0, ""); err != nil {
		fmt.Println("proc:", err)
		return 9
	}
	if err := Apply(root); err != nil {
		fmt.Println("apply:", err)
		return 9
	}
	for _, f := range []string{"keys", "timer_list"} {
		b, err := os.ReadFile(filepath.Join(proc, f))
		fmt.Printf("%s: %d bytes, %v\n", f, len(b), err)
	}
	ents, _ := os.ReadDir(filepath.Join(proc, "acpi"))
	fmt.Printf("acpi: %d entries\n", len(ents))
	err := os.WriteFile(filepath.Join(proc, "sys/kernel/hostname"), []byte("x"), 0)
	fmt.Println("sys write:", err)
	return 0
}

func TestApplyForReal(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: mount namespaces and mounts (CI runs as root; -short skips it)")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "UNDERHOOD_MASKED_TEST="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"timer_list: 0 bytes, <nil>", "keys: 0 bytes, <nil>", "sys write: open " + root + "/proc/sys/kernel/hostname: read-only file system"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if _, err := os.Stat("/proc/acpi"); err == nil && !strings.Contains(string(out), "acpi: 0 entries") {
		t.Errorf("acpi not masked:\n%s", out)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), root) {
		t.Errorf("a mount reached the host's table below %s", root)
	}
}
