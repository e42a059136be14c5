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
