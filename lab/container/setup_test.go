package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
)

// The test binary is its own container's first process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ns.InitArg {
		ns.Init()
	}
	os.Exit(m.Run())
}

// The child makes its mounts while the parent still joins it to its
// cgroup (issue 16): when that set-up fails, Run reports the child's own
// error (/dev/null could not be bound on a directory) with status 1,
// whether the join came before or after the child's end, and leaves
// neither run nor cgroup.
func TestSetupFailsWhileJoining(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("requires root: namespaces, mounts and cgroups")
	}
	host, err := cgroup.Detect("/sys/fs/cgroup")
	if err != nil || host.Layout == cgroup.None {
		t.Skipf("no usable cgroup here: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"proc", "dev/null"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := state.Workdir{Root: filepath.Join(t.TempDir(), "lab")}
	parent := filepath.Join(cgroup.DefaultParent, RandomName("ctest"))
	removeParent(t, parent)
	for i := 0; i < 5; i++ {
		res, err := Run(w, Spec{Kind: "unshare", Rootfs: root, Self: self,
			Clone:  syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
			Flags:  ns.Private | ns.MountProc | ns.BindDev | ns.Chroot,
			Memory: 64 << 20, Cgroups: host, CgroupParent: parent, Argv: []string{"/bin/true"}})
		var se *ns.SetupError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "dev/null") || res.SetupFailed != 1 {
			t.Fatalf("run %d: %v (%T), setup status %d; want the child's error about dev/null, status 1", i, err, err, res.SetupFailed)
		}
		if res.Cgroup == "" {
			t.Fatalf("run %d: no cgroup was made, so the join was not exercised", i)
		}
		if _, err := os.Stat(res.Cgroup); !os.IsNotExist(err) {
			t.Errorf("run %d: cgroup %s left: %v", i, res.Cgroup, err)
		}
	}
	if runs, _ := w.ListRuns(); len(runs) != 0 {
		t.Errorf("runs left: %v", runs)
	}
}

// removeParent removes the test's parent cgroup in every hierarchy.
func removeParent(t *testing.T, parent string) {
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
		for _, d := range append(dirs, filepath.Join("/sys/fs/cgroup", parent)) {
			_ = os.Remove(d)
		}
	})
}
