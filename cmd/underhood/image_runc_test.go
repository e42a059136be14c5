package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/lab/bundle"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/image"
)

// The inspector reads runc's container of the learner's image as it reads
// its own: its PID, mount and UTS namespaces isolated, its memory cgroup
// with the limit the bundle's config.json asked for.
func TestInspectorReadsRuncContainerOfTheImage(t *testing.T) {
	needLab(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("needs runc (make setup installs it)")
	}
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "image")
	if _, err := image.Write(filepath.Join(workdir, "rootfs"), layout, "latest", image.Config{Cmd: []string{"/bin/busybox", "sh"}}); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(tmp, "bundle")
	os.Mkdir(b, 0o755)
	if _, err := image.Unpack(layout, "latest", filepath.Join(b, "rootfs")); err != nil {
		t.Fatal(err)
	}
	id := container.RandomName("runc-inspect")
	spec := bundle.Spec(bundle.Options{Name: id, Hostname: "lab", Memory: 64 << 20, Pids: 32,
		Env: []string{"PATH=/bin"}, Args: []string{"/bin/busybox", "sleep", "30"}})
	spec.Linux.CgroupsPath = "/" + cgParent + "/" + id
	if err := bundle.Write(b, spec); err != nil {
		t.Fatal(err)
	}
	rt := bundle.Runtime{Path: runc, State: filepath.Join(tmp, "runc")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := rt.Run(ctx, b, id, nil, io.Discard, io.Discard)
		done <- err
	}()
	var pid int
	waitFor(t, 10*time.Second, func() bool {
		out, err := exec.Command(runc, "--root", rt.State, "state", id).Output()
		var st struct {
			Pid    int
			Status string
		}
		if err == nil && json.Unmarshal(out, &st) == nil && st.Status == "running" {
			pid = st.Pid
		}
		return pid > 0
	})
	r := runUH(t, "inspect", "--pid", fmt.Sprint(pid), "--json")
	cancel()
	rt.Delete(id)
	<-done
	if r.code != 0 {
		t.Fatalf("inspect --pid %d: exit %d\n%s", pid, r.code, r.err)
	}
	var rep struct {
		Namespaces []struct {
			Type     string
			Isolated bool
		}
		Cgroup struct {
			LimitBytes int64  `json:"limit_bytes"`
			HostPath   string `json:"host_path"`
		}
		Filesystem map[string]any
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.out)
	}
	iso := map[string]bool{}
	for _, n := range rep.Namespaces {
		iso[n.Type] = n.Isolated
	}
	for _, ns := range []string{"pid", "mnt", "uts", "ipc"} {
		if !iso[ns] {
			t.Errorf("the inspector sees runc's container share the host's %s namespace", ns)
		}
	}
	if rep.Cgroup.LimitBytes != 64<<20 || !strings.HasSuffix(rep.Cgroup.HostPath, id) {
		t.Errorf("cgroup as inspected: %+v, want the limit 64 MiB in .../%s", rep.Cgroup, id)
	}
	assertClean(t)
}
