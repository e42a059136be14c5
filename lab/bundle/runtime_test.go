package bundle

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/image"
	"github.com/underhood/underhood/lab/rootfs"
)

// runtimeBundle prepares the lab's BusyBox root, writes it as an image,
// unpacks it with image.Unpack into a bundle and writes config.json.
func runtimeBundle(t *testing.T, rt string, o Options) string {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skipf("needs root (%s creates namespaces and cgroups)", rt)
	}
	if _, err := exec.LookPath(rt); err != nil {
		t.Skipf("needs %s (make setup installs it)", rt)
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := rootfs.Prepare(src, "/bin/busybox", true); err != nil {
		t.Skip(err)
	}
	layout := filepath.Join(tmp, "img")
	if _, err := image.Write(src, layout, "v1", image.Config{Cmd: o.Args, Env: o.Env}); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(tmp, "bundle")
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := image.Unpack(layout, "v1", filepath.Join(b, "rootfs")); err != nil {
		t.Fatal(err)
	}
	if err := Write(b, Spec(o)); err != nil {
		t.Fatal(err)
	}
	return b
}

// cgroupDirs are the container's cgroup directories, on v1 (one per
// hierarchy) and v2.
func cgroupDirs(name string) []string {
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/underhood/" + name)
	v2, _ := filepath.Glob("/sys/fs/cgroup/underhood/" + name)
	return append(v1, v2...)
}

// keepParents removes, at the end of the test, the "underhood" parent
// cgroups the runtime created for us, and only those (rmdir fails on one
// another run is using, which is then left alone).
func keepParents(t *testing.T) {
	before := map[string]bool{}
	glob := func() []string {
		a, _ := filepath.Glob("/sys/fs/cgroup/*/underhood")
		b, _ := filepath.Glob("/sys/fs/cgroup/underhood")
		return append(a, b...)
	}
	for _, d := range glob() {
		before[d] = true
	}
	t.Cleanup(func() {
		for _, d := range glob() {
			if !before[d] {
				os.Remove(d)
			}
		}
	})
}

func limitFiles(name string) (mem, pids string) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		d := "/sys/fs/cgroup/underhood/" + name
		return d + "/memory.max", d + "/pids.max"
	}
	return "/sys/fs/cgroup/memory/underhood/" + name + "/memory.limit_in_bytes",
		"/sys/fs/cgroup/pids/underhood/" + name + "/pids.max"
}

func runtimeCmd(ctx context.Context, rt, state string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, rt, append([]string{"--root", state}, args...)...)
}

// assertGone checks the runtime forgot the container and its cgroups left.
func assertGone(t *testing.T, rt, state, id string) {
	out, err := runtimeCmd(context.Background(), rt, state, "list", "-q").Output()
	if err != nil {
		t.Errorf("%s list: %v", rt, err)
	}
	if strings.Contains(string(out), id) {
		t.Errorf("%s list still shows %s:\n%s", rt, id, out)
	}
	if left := cgroupDirs(id); len(left) > 0 {
		t.Errorf("cgroups left after %s run: %v", rt, left)
	}
}

func uniqueID(rt string) string {
	return fmt.Sprintf("uh-test-%s-%d-%d", rt, os.Getpid(), time.Now().UnixNano()%1e9)
}
