package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

const hostBusybox = "/bin/busybox"

// busyboxServer serves the host's static BusyBox at /busybox (404 elsewhere)
// and returns its URL, SHA-256 and a request count.
func busyboxServer(t *testing.T) (*httptest.Server, string, string, *atomic.Int64) {
	t.Helper()
	body, err := os.ReadFile(hostBusybox)
	if err != nil || busybox.CheckStatic(hostBusybox) != nil {
		t.Skipf("SKIP: needs a static BusyBox at %s (apt-get install busybox-static)", hostBusybox)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/busybox" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(body)
	return srv, srv.URL + "/busybox", hex.EncodeToString(sum[:]), &hits
}

func testWorkdir(t *testing.T) state.Workdir {
	return state.Workdir{Root: filepath.Join(t.TempDir(), "wd")}
}

func testIO() (*ui.IO, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return ui.Buffers(strings.NewReader(""), &out, &errb), &out, &errb
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, text)
		}
	}
}

func TestDownloadFromServer(t *testing.T) {
	srv, u, sum, hits := busyboxServer(t)
	w := testWorkdir(t)
	o, out, errb := testIO()
	opt := DownloadOptions{URL: u, SHA256: sum, Client: srv.Client(), Fallbacks: []string{}}

	if err := Download(context.Background(), o, w, opt); err != nil {
		t.Fatalf("Download: %v\n%s", err, errb)
	}
	if out.String() != "Hello from BusyBox!\n" {
		t.Errorf("stdout = %q, want the Hello line only", out)
	}
	mustContain(t, "stderr", errb.String(),
		"downloading "+u,
		"Downloaded ",
		"SHA-256 "+sum[:12],
		"$ "+w.Busybox()+" echo Hello from BusyBox!",
		"Next: sudo underhood rootfs (step 2)")
	if done, detail := busyboxDone(w); !done || !strings.Contains(detail, "static ELF") {
		t.Errorf("Done = %v, %q; want true, … static ELF", done, detail)
	}

	// Again: the verified copy is kept and the server is not asked.
	o, _, errb = testIO()
	if err := Download(context.Background(), o, w, opt); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Errorf("server asked %d times, want 1: the cached copy should be reused", hits.Load())
	}
	mustContain(t, "stderr", errb.String(), "already here and its SHA-256 matches")
}

func TestDownloadUsageErrorsCreateNothing(t *testing.T) {
	good := strings.Repeat("a", 64)
	for _, tt := range []struct {
		name string
		opt  DownloadOptions
		want string
	}{
		{"url without sha", DownloadOptions{URL: "https://example.org/busybox"}, "--url needs --sha256"},
		{"sha without url", DownloadOptions{SHA256: good}, "--sha256 goes with --url"},
		{"short sha", DownloadOptions{URL: "https://example.org/busybox", SHA256: "abc123"}, "64 hex digits"},
		{"non-hex sha", DownloadOptions{URL: "https://example.org/busybox", SHA256: strings.Repeat("g", 64)}, "not hexadecimal"},
		{"ftp url", DownloadOptions{URL: "ftp://example.org/busybox", SHA256: good}, "want an http:// or https:// URL"},
		{"no host", DownloadOptions{URL: "https:///busybox", SHA256: good}, "want an http:// or https:// URL"},
		{"from with url", DownloadOptions{From: hostBusybox, URL: "https://example.org/busybox", SHA256: good}, "does not go with --url"},
		{"from a text file", DownloadOptions{From: "/etc/hostname"}, "is not an ELF executable"},
		{"from a missing file", DownloadOptions{From: "/nonexistent/busybox"}, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := testWorkdir(t)
			o, out, errb := testIO()
			err := Download(context.Background(), o, w, tt.opt)
			var ue *ui.UsageError
			if !errors.As(err, &ue) || ui.ExitCode(err) != 2 {
				t.Fatalf("err = %#v, want a *ui.UsageError (exit 2)", err)
			}
			mustContain(t, "error", err.Error(), tt.want)
			if _, err := os.Stat(w.Root); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("work directory %s exists after a usage error (stat: %v)", w.Root, err)
			}
			if out.Len()+errb.Len() != 0 {
				t.Errorf("printed %q %q before failing", out, errb)
			}
		})
	}
}

func TestDownloadFallsBackLoudly(t *testing.T) {
	srv, u, _, _ := busyboxServer(t)
	w := testWorkdir(t)
	o, out, errb := testIO()
	bad := strings.Replace(u, "/busybox", "/missing", 1)
	err := Download(context.Background(), o, w, DownloadOptions{
		URL: bad, SHA256: strings.Repeat("0", 64), Client: srv.Client(), Fallbacks: []string{hostBusybox},
	})
	if err != nil {
		t.Fatalf("Download with a fallback: %v", err)
	}
	mustContain(t, "stderr", errb.String(),
		"warning: THE DOWNLOAD FAILED: download "+bad+": 404 Not Found",
		"USING THE STATIC BUSYBOX INSTALLED AT "+hostBusybox,
		"--no-fallback",
		"Next: sudo underhood rootfs (step 2)")
	if out.String() != "Hello from BusyBox!\n" {
		t.Errorf("stdout = %q", out)
	}
	a, _ := os.ReadFile(hostBusybox)
	b, _ := os.ReadFile(w.Busybox())
	if !bytes.Equal(a, b) {
		t.Error("the work directory's BusyBox is not a copy of the fallback")
	}
}

// A download whose checksum is wrong fails, exit 1, nothing installed,
// even with a local BusyBox to fall back on, unless --fallback-on-mismatch
// (issue 10, item 10).
func TestDownloadMismatchFails(t *testing.T) {
	srv, u, _, _ := busyboxServer(t)
	wrong := strings.Repeat("0", 64)
	w := testWorkdir(t)
	o, _, errb := testIO()
	err := Download(context.Background(), o, w, DownloadOptions{URL: u, SHA256: wrong, Client: srv.Client(), Fallbacks: []string{hostBusybox}})
	if err == nil || ui.ExitCode(err) != 1 {
		t.Fatalf("a checksum mismatch: %v (exit %d), want a failure", err, ui.ExitCode(err))
	}
	mustContain(t, "error", err.Error(), "checksum mismatch", "nothing was installed",
		"'sudo underhood download --from "+hostBusybox+"', or add --fallback-on-mismatch")
	if _, err := os.Stat(w.Busybox()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a mismatch", w.Busybox())
	}
	if strings.Contains(errb.String(), "USING THE STATIC BUSYBOX") {
		t.Errorf("fell back after a mismatch:\n%s", errb)
	}

	o, _, errb = testIO()
	err = Download(context.Background(), o, w, DownloadOptions{URL: u, SHA256: wrong, Client: srv.Client(), Fallbacks: []string{hostBusybox}, FallbackOnMismatch: true})
	if err != nil {
		t.Fatalf("with --fallback-on-mismatch: %v", err)
	}
	mustContain(t, "stderr", errb.String(), "checksum mismatch", "USING THE STATIC BUSYBOX INSTALLED AT "+hostBusybox)
}

func TestDownloadFailsWithTheFix(t *testing.T) {
	srv, u, _, _ := busyboxServer(t)
	bad := strings.Replace(u, "/busybox", "/missing", 1)
	for _, tt := range []struct {
		name  string
		opt   DownloadOptions
		wants []string
	}{
		{"no-fallback", DownloadOptions{NoFallback: true, Fallbacks: []string{hostBusybox}}, []string{
			"--no-fallback, so the static BusyBox installed at " + hostBusybox + " was not used",
			"run 'sudo underhood download --from " + hostBusybox + "'",
			"sudo apt-get install busybox-static"}},
		{"nothing local", DownloadOptions{Fallbacks: []string{"/nonexistent/busybox", "/bin/ls"}}, []string{
			"No static BusyBox is installed on this machine either",
			"sudo apt-get install busybox-static, then sudo underhood download --from /bin/busybox"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := testWorkdir(t)
			o, _, errb := testIO()
			tt.opt.URL, tt.opt.SHA256, tt.opt.Client = bad, strings.Repeat("0", 64), srv.Client()
			err := Download(context.Background(), o, w, tt.opt)
			if err == nil {
				t.Fatal("Download succeeded, want an error")
			}
			mustContain(t, "error", err.Error(), append([]string{"download " + bad + ": 404 Not Found"}, tt.wants...)...)
			if ui.ExitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", ui.ExitCode(err))
			}
			if _, err := os.Stat(w.Busybox()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a failed download", w.Busybox())
			}
			if strings.Contains(errb.String(), "warning") {
				t.Errorf("warned about a fallback that was not used:\n%s", errb)
			}
		})
	}
}

func TestDownloadFrom(t *testing.T) {
	if busybox.CheckStatic(hostBusybox) != nil {
		t.Skipf("SKIP: needs a static BusyBox at %s", hostBusybox)
	}
	w := testWorkdir(t)
	o, out, errb := testIO()
	if err := Download(context.Background(), o, w, DownloadOptions{From: hostBusybox}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "stderr", errb.String(), "copied "+hostBusybox+" to "+w.Busybox(), "static ELF")
	if out.String() != "Hello from BusyBox!\n" {
		t.Errorf("stdout = %q", out)
	}
	if fi, err := os.Stat(w.Busybox()); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v %v, want mode 0755", w.Busybox(), fi, err)
	}
}

func TestDownloadDoneAndExplain(t *testing.T) {
	s, ok := ByNumber(1)
	if !ok || s.Name != "download" || s.Title != "Download BusyBox" {
		t.Fatalf("step 1 = %+v, %v", s, ok)
	}
	if done, detail := s.Done(testWorkdir(t)); done || detail != "missing" {
		t.Errorf("Done on an empty workdir = %v, %q", done, detail)
	}
	w := testWorkdir(t)
	os.MkdirAll(w.Root, 0o755)
	os.WriteFile(w.Busybox(), []byte("#!/bin/sh\n"), 0o755)
	if done, _ := s.Done(w); done {
		t.Error("Done accepted a shell script as BusyBox")
	}
	o, out, _ := testIO()
	WriteExplain(o, s)
	mustContain(t, "--explain", out.String(), "chmod +x busybox", "./busybox echo Hello from BusyBox!", "rename(2)", "Nothing was changed")
}
