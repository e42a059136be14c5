package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/rootfs"
)

func TestRootfsDownloadsFirst(t *testing.T) {
	srv, u, sum, hits := busyboxServer(t)
	saved := rootfsDownload
	rootfsDownload = DownloadOptions{URL: u, SHA256: sum, Client: srv.Client(), Fallbacks: []string{}}
	t.Cleanup(func() { rootfsDownload = saved })

	w := testWorkdir(t)
	o, out, errb := testIO()
	if err := Rootfs(context.Background(), o, w, RootfsOptions{}); err != nil {
		t.Fatalf("Rootfs: %v\n%s", err, errb)
	}
	if hits.Load() != 1 {
		t.Errorf("server asked %d times, want 1", hits.Load())
	}
	mustContain(t, "stderr", errb.String(),
		"No BusyBox at "+w.Busybox()+" yet: running step 1",
		"root filesystem ready at "+w.Rootfs(),
		"add --links",
		"Next: sudo underhood chroot (step 3)")
	if strings.Contains(errb.String(), "(step 2)") {
		t.Errorf("step 2 told the user to run step 2:\n%s", errb)
	}
	mustContain(t, "stdout", out.String(), "Hello from BusyBox!", w.Rootfs()+"/", "bin/busybox", "proc/", "programs: only busybox")
	if err := rootfs.Check(w.Rootfs()); err != nil {
		t.Errorf("Check after Rootfs: %v", err)
	}
	if done, detail := rootfsDone(w); !done || detail != "bin dev etc proc sys, bin/busybox" {
		t.Errorf("Done = %v, %q", done, detail)
	}
}

func TestRootfsLinksTwice(t *testing.T) {
	w := testWorkdir(t)
	o, _, _ := testIO()
	if err := Download(context.Background(), o, w, DownloadOptions{From: hostBusybox}); err != nil {
		t.Skipf("SKIP: needs a static BusyBox at %s: %v", hostBusybox, err)
	}
	for i := range 2 {
		o, out, errb := testIO()
		if err := Rootfs(context.Background(), o, w, RootfsOptions{Links: true}); err != nil {
			t.Fatalf("Rootfs #%d: %v", i+1, err)
		}
		mustContain(t, "stdout", out.String(), "applet links to it")
		if strings.Contains(errb.String(), "running step 1") {
			t.Error("downloaded again with BusyBox in place")
		}
	}
	if target, err := os.Readlink(filepath.Join(w.Rootfs(), "bin", "ls")); err != nil || target != "busybox" {
		t.Errorf("bin/ls -> %q (%v), want busybox", target, err)
	}
	if done, detail := rootfsDone(w); !done || !strings.Contains(detail, "applet links") {
		t.Errorf("Done = %v, %q", done, detail)
	}
}

func TestRootfsRefusesABadBusybox(t *testing.T) {
	w := testWorkdir(t)
	os.MkdirAll(w.Root, 0o755)
	os.WriteFile(w.Busybox(), []byte("<html>oops</html>\n"), 0o755)
	o, _, _ := testIO()
	err := Rootfs(context.Background(), o, w, RootfsOptions{})
	if err == nil {
		t.Fatal("Rootfs accepted an HTML page as BusyBox")
	}
	mustContain(t, "error", err.Error(), "is not an ELF executable", "sudo underhood download' (step 1)")
	if _, err := os.Stat(w.Rootfs()); err == nil {
		t.Error("rootfs created with a bad BusyBox")
	}
}

func TestRootfsStep(t *testing.T) {
	s, ok := ByNumber(2)
	if !ok || s.Name != "rootfs" || s.Title != "Prepare the root filesystem" {
		t.Fatalf("step 2 = %+v, %v", s, ok)
	}
	w := testWorkdir(t)
	if done, detail := s.Done(w); done || detail != "missing" {
		t.Errorf("Done on an empty workdir = %v, %q", done, detail)
	}
	os.MkdirAll(filepath.Join(w.Rootfs(), "bin"), 0o755)
	if done, detail := s.Done(w); done || detail != "dev/ is missing" {
		t.Errorf("Done on a partial rootfs = %v, %q", done, detail)
	}
	o, out, _ := testIO()
	WriteExplain(o, s)
	mustContain(t, "--explain", out.String(), "mkdir -p bin dev etc proc sys", "ioctl(FICLONE)")
}
