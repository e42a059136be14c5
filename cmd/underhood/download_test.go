package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill -9 of a download leaves its .part file; the next download removes
// it and says so (issue 10, item 7).
func TestKilledDownloadsPartIsRemovedNext(t *testing.T) {
	body, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("requires /bin/busybox (apt-get install busybox-static)")
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select { // the rest never comes: underhood is killed meanwhile
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	wd := filepath.Join(t.TempDir(), "lab")
	cmd := exec.Command(binary, "--workdir", wd, "download", "--no-fallback", "--url", srv.URL+"/busybox", "--sha256", strings.Repeat("a", 64))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var parts []string
	waitFor(t, 10*time.Second, func() bool {
		parts, _ = filepath.Glob(filepath.Join(wd, ".busybox.*.part"))
		if len(parts) == 0 {
			return false
		}
		fi, err := os.Stat(parts[0])
		return err == nil && fi.Size() > 0
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if left, _ := filepath.Glob(filepath.Join(wd, ".busybox.*.part")); len(left) != 1 {
		t.Fatalf("after kill -9: .part files %v, want the one it was writing", left)
	}
	r := runUHIn(t, wd, "download", "--from", "/bin/busybox")
	if r.code != 0 {
		t.Fatalf("the next download: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.err, "left by a download that was killed") || !strings.Contains(r.err, filepath.Base(parts[0])) {
		t.Errorf("the next download does not say it removed %s:\n%s", parts[0], r.err)
	}
	if left, _ := filepath.Glob(filepath.Join(wd, ".busybox.*.part")); len(left) != 0 {
		t.Errorf("still there after the next download: %v", left)
	}
}

// SIGHUP (or SIGTERM) during a download: underhood says which signal
// came and exits 128 + its number, not 130 (issue 10, item 10).
func TestSignalDuringDownloadExitsWithIt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write([]byte("\x7fELF"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		wd := filepath.Join(t.TempDir(), "lab")
		cmd := exec.Command(binary, "--workdir", wd, "download", "--no-fallback", "--url", srv.URL+"/busybox", "--sha256", strings.Repeat("a", 64))
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		stderr := &syncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, func() bool {
			parts, _ := filepath.Glob(filepath.Join(wd, ".busybox.*.part"))
			return len(parts) > 0
		})
		_ = cmd.Process.Signal(sig)
		if code := exitCode(cmd.Wait()); code != 128+int(sig) {
			t.Errorf("%v: exit %d, want %d\n%s", sig, code, 128+int(sig), stderr)
		}
		if !strings.Contains(stderr.String(), "got "+sig.String()) {
			t.Errorf("%v: the message does not name it: %q", sig, stderr)
		}
		if parts, _ := filepath.Glob(filepath.Join(wd, ".busybox.*.part")); len(parts) > 0 {
			t.Errorf("%v left %v", sig, parts)
		}
	}
}

// A work directory on a noexec filesystem: download says noexec and what
// to do, before it makes anything (issue 10, item 10).
func TestDownloadIntoNoexecSaysSo(t *testing.T) {
	if !asRoot() {
		t.Skip("requires root: mounts a tmpfs with noexec (CI runs as root)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOEXEC|syscall.MS_NOSUID|syscall.MS_NODEV, "size=16m"); err != nil {
		t.Fatalf("mount a noexec tmpfs: %v", err)
	}
	defer func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), dir) {
			t.Errorf("%s is still mounted", dir)
		}
	}()
	wd := filepath.Join(dir, "lab")
	r := runUHIn(t, wd, "download", "--from", "/bin/busybox")
	if r.code != 1 || !strings.Contains(r.err, "mounted noexec ("+dir+")") || !strings.Contains(r.err, "remount it without noexec") || !strings.Contains(r.err, "--workdir on another filesystem") {
		t.Errorf("download into noexec: exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Lstat(wd); err == nil {
		t.Errorf("%s was made", wd)
	}
}
