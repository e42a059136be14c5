package busybox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const hostBusybox = "/bin/busybox"

// realBusybox returns the bytes of the host's static BusyBox and their
// SHA-256, or skips: these tests run the binary they download.
func realBusybox(t *testing.T) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(hostBusybox)
	if err != nil {
		t.Skipf("SKIP: needs a static BusyBox at %s (apt-get install busybox-static): %v", hostBusybox, err)
	}
	if err := CheckStatic(hostBusybox); err != nil {
		t.Skipf("SKIP: %s is not a static BusyBox for this machine: %v", hostBusybox, err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// serve serves body at /busybox and counts the requests.
func serve(t *testing.T, body []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
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
	return srv, &hits
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func wantEmpty(t *testing.T, dir string) {
	t.Helper()
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("%s should be empty after a failed download, has %q", dir, names)
	}
}

func TestFetchVerifiedRunsHello(t *testing.T) {
	body, sum := realBusybox(t)
	srv, _ := serve(t, body)
	dir := t.TempDir()
	dest := filepath.Join(dir, "busybox")

	var last, total int64 = -2, -2
	cached, err := Fetch(context.Background(), srv.Client(), srv.URL+"/busybox", sum, dest, func(d, tot int64) { last, total = d, tot })
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if cached {
		t.Error("Fetch reported a cached copy on the first download")
	}
	if last != int64(len(body)) || total != int64(len(body)) {
		t.Errorf("last progress = (%d, %d), want (%d, %d)", last, total, len(body), len(body))
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want 0755", fi.Mode().Perm())
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"busybox"}) {
		t.Errorf("dir holds %q, want only busybox (no temporary file)", got)
	}
	out, err := Hello(dest)
	if err != nil {
		t.Fatalf("Hello: %v", err)
	}
	if out != "Hello from BusyBox!" {
		t.Errorf("Hello = %q", out)
	}
}

func TestFetchChecksumMismatchLeavesNothing(t *testing.T) {
	body, _ := realBusybox(t)
	srv, _ := serve(t, body)
	dir := t.TempDir()
	wrong := strings.Repeat("ab", 32)
	u := srv.URL + "/busybox"

	_, err := Fetch(context.Background(), srv.Client(), u, wrong, filepath.Join(dir, "busybox"), nil)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want a checksum mismatch", err)
	}
	for _, s := range []string{"download " + u, "want " + wrong} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	wantEmpty(t, dir)
}

func TestFetchNotFound(t *testing.T) {
	srv, _ := serve(t, []byte("x"))
	dir := t.TempDir()
	u := srv.URL + "/nope"
	_, err := Fetch(context.Background(), srv.Client(), u, strings.Repeat("0", 64), filepath.Join(dir, "busybox"), nil)
	if err == nil || err.Error() != "download "+u+": 404 Not Found" {
		t.Fatalf("err = %v, want download %s: 404 Not Found", err, u)
	}
	wantEmpty(t, dir)
}

func TestFetchConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String() + "/busybox"
	l.Close()
	dir := t.TempDir()
	_, err = Fetch(context.Background(), nil, u, strings.Repeat("0", 64), filepath.Join(dir, "busybox"), nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.HasPrefix(err.Error(), "download "+u+": ") {
		t.Fatalf("err = %v, want download %s: … connection refused", err, u)
	}
	wantEmpty(t, dir)
}

func TestFetchCancelledMidStream(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(make([]byte, 4096))
		w.(http.Flusher).Flush()
		select { // a server that stalls after the first bytes
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sawTemp := make(chan bool, 1)
	progress := func(done, total int64) {
		if done > 0 {
			select {
			case sawTemp <- len(listDir(t, dir)) == 1:
				cancel() // as Ctrl-C would, while the temporary file exists
			default:
			}
		}
	}
	start := time.Now()
	_, err := Fetch(ctx, srv.Client(), srv.URL+"/busybox", strings.Repeat("0", 64), filepath.Join(dir, "busybox"), progress)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch took %v to notice the cancellation", d)
	}
	if !<-sawTemp {
		t.Error("no temporary file during the download: the test did not cancel mid-stream")
	}
	wantEmpty(t, dir)
}

func TestFetchReusesVerifiedCopy(t *testing.T) {
	body, sum := realBusybox(t)
	srv, hits := serve(t, body)
	dest := filepath.Join(t.TempDir(), "busybox")
	u := srv.URL + "/busybox"

	if _, err := Fetch(context.Background(), srv.Client(), u, sum, dest, nil); err != nil {
		t.Fatal(err)
	}
	cached, err := Fetch(context.Background(), srv.Client(), u, sum, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cached || hits.Load() != 1 {
		t.Errorf("second Fetch: cached = %v, requests = %d; want true, 1", cached, hits.Load())
	}

	// A copy with the wrong content is downloaded again.
	if err := os.WriteFile(dest, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	cached, err = Fetch(context.Background(), srv.Client(), u, sum, dest, nil)
	if err != nil || cached || hits.Load() != 2 {
		t.Fatalf("after tampering: cached = %v, requests = %d, err = %v; want false, 2, nil", cached, hits.Load(), err)
	}
	if got, _ := FileSHA256(dest); got != sum {
		t.Errorf("dest sha256 = %s, want %s", got, sum)
	}
}

func TestFetchRejectsBadChecksumArgument(t *testing.T) {
	dir := t.TempDir()
	_, err := Fetch(context.Background(), nil, "http://127.0.0.1:1/busybox", "abc", filepath.Join(dir, "busybox"), nil)
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("err = %v, want a complaint about the sha256", err)
	}
	wantEmpty(t, dir)
}

// patched returns a copy of the host BusyBox with a 16-bit field of its ELF
// header changed, written to a temporary file.
func patched(t *testing.T, body []byte, offset int, v uint16) string {
	t.Helper()
	b := bytes.Clone(body)
	binary.LittleEndian.PutUint16(b[offset:], v)
	p := filepath.Join(t.TempDir(), "patched")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckStatic(t *testing.T) {
	body, _ := realBusybox(t)
	text := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(text, []byte("<!DOCTYPE html>\n<p>Not here</p>\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const eType, eMachine = 16, 18 // offsets in the ELF header
	tests := []struct {
		name, path string
		want       string // "" = accepted
	}{
		{"static busybox", hostBusybox, ""},
		{"static PIE", patched(t, body, eType, 3 /* ET_DYN */), ""},
		{"text file", text, text + ` is not an ELF executable: it is text that begins "<!DOCTYPE html>"`},
		{"dynamic", "/bin/ls", "/bin/ls is dynamically linked (needs /lib"},
		{"other architecture", patched(t, body, eMachine, 183 /* EM_AARCH64 */), "is built for aarch64"},
		{"relocatable", patched(t, body, eType, 1 /* ET_REL */), "its ELF type is ET_REL"},
		{"missing", "/nonexistent/busybox", "check BusyBox: open /nonexistent/busybox: no such file or directory"},
		{"directory", t.TempDir(), "is a directory, not an ELF executable: give the BusyBox file itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == "/bin/ls" {
				if _, err := os.Stat(tt.path); err != nil {
					t.Skipf("SKIP: no %s to use as a dynamic binary", tt.path)
				}
			}
			err := checkStatic(tt.path, "amd64")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("accepted, want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDefaultFor(t *testing.T) {
	s, err := DefaultFor("x86_64")
	if err != nil || s.URL != DefaultURL || s.SHA256 != DefaultSHA256 {
		t.Errorf("DefaultFor(x86_64) = %+v, %v", s, err)
	}
	for _, m := range []string{"aarch64", "arm64", "riscv64"} {
		_, err := DefaultFor(m)
		if err == nil || !strings.Contains(err.Error(), "--from /bin/busybox") || !strings.Contains(err.Error(), m) {
			t.Errorf("DefaultFor(%s) err = %v, want it to name %s and point at --from /bin/busybox", m, err, m)
		}
	}
	if m, err := Machine(); err != nil || m == "" {
		t.Errorf("Machine() = %q, %v", m, err)
	}
}

func TestInstall(t *testing.T) {
	body, _ := realBusybox(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "busybox")

	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("hello\n"), 0o644)
	if err := Install(text, dest); err == nil || !strings.Contains(err.Error(), "is not an ELF executable") {
		t.Fatalf("Install(text) err = %v", err)
	}
	wantEmpty(t, dir)

	if err := Install(hostBusybox, dest); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("installed copy differs from %s (err %v)", hostBusybox, err)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want 0755", fi.Mode().Perm())
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"busybox"}) {
		t.Errorf("dir holds %q", names)
	}
}

func TestApplets(t *testing.T) {
	realBusybox(t)
	names, err := Applets(hostBusybox)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sh", "ls", "echo"} {
		if !slices.Contains(names, want) {
			t.Errorf("applets lack %q", want)
		}
	}
	if slices.Contains(names, "busybox") {
		t.Error("applets include busybox itself")
	}
}

func TestLocalStatic(t *testing.T) {
	realBusybox(t)
	text := filepath.Join(t.TempDir(), "busybox")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	got := LocalStatic([]string{text, "/nonexistent/busybox", "/bin/ls", hostBusybox, hostBusybox})
	if !slices.Equal(got, []string{hostBusybox}) {
		t.Errorf("LocalStatic = %q, want [%s]", got, hostBusybox)
	}
}

// PrivateCopy copies only what has the recorded checksum and is a static
// ELF, into a directory of mode 0700, and keeps a good copy.
func TestPrivateCopy(t *testing.T) {
	body, sum := realBusybox(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "busybox")
	if err := os.WriteFile(src, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Record(src); err != nil || got != sum {
		t.Fatalf("Record: %q, %v; want %s", got, err, sum)
	}
	priv := filepath.Join(dir, "verified")
	p, err := HostCopy(src, priv)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("private directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if out, err := Hello(p); err != nil || out != "Hello from BusyBox!" {
		t.Errorf("the private copy does not run: %q, %v", out, err)
	}
	// A changed source: refused, and the good copy stays as it is.
	if err := os.WriteFile(src, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if _, err := HostCopy(src, priv); !errors.Is(err, ErrChecksum) {
		t.Errorf("a changed BusyBox: %v, want a checksum mismatch", err)
	}
	if names := listDir(t, priv); len(names) != 0 {
		t.Errorf("a refused copy left %q", names)
	}
	// A static ELF with another checksum than the one recorded: refused.
	if _, err := PrivateCopy(hostBusybox, strings.Repeat("0", 64), priv); !errors.Is(err, ErrChecksum) {
		t.Errorf("another BusyBox: %v, want a checksum mismatch", err)
	}
}

// A FIFO in place of a BusyBox is refused at once, never read (a read
// would block for ever).
func TestFIFORefusedWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	go func() { done <- CheckStatic(fifo) }()
	go func() { _, err := FileSHA256(fifo); done <- err }()
	go func() { done <- Install(fifo, filepath.Join(t.TempDir(), "bb")) }()
	for range 3 {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("a FIFO: %v, want it refused as a FIFO", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a FIFO as BusyBox blocks")
		}
	}
}

// A .part file nobody holds is removed; one a writer holds locked (a
// download going on at the same time) is left alone.
func TestRemoveStaleParts(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "busybox")
	stale, live := filepath.Join(dir, ".busybox.111.part"), filepath.Join(dir, ".busybox.222.part")
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveStaleParts(dest)
	if err != nil || len(removed) != 1 || removed[0] != stale {
		t.Errorf("removed %v, %v; want only %s", removed, err, stale)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the locked .part was removed: %v", err)
	}
}
