package busybox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSize bounds a download. BusyBox is one or two MiB; a server that sends
// far more is not sending BusyBox, and must not fill the disk.
const MaxSize = 64 << 20

// ErrChecksum is a download whose SHA-256 is not the expected one.
var ErrChecksum = errors.New("checksum mismatch")

// ParseSHA256 checks that s is a SHA-256 in hex and returns it in lower case.
func ParseSHA256(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != sha256.Size*2 {
		return "", fmt.Errorf("sha256 %q: want 64 hex digits, got %d characters", s, len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("sha256 %q: not hexadecimal", s)
	}
	return s, nil
}

// FileSHA256 is the SHA-256 of the file at path, in hex.
func FileSHA256(path string) (string, error) {
	f, err := openRegular(path, true)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Fetch downloads rawURL to dest (mode 0755) if its SHA-256 is sha256hex. It
// streams into a temporary file next to dest, hashing as it goes, and renames
// it into place only when the checksum matches: on any failure, cancellation
// included, dest is untouched and no temporary file is left. A file already
// at dest with the right checksum is kept and no request is made; cached
// reports that. progress, when not nil, is called as bytes arrive, with total
// -1 when the server did not say how many to expect.
func Fetch(ctx context.Context, client *http.Client, rawURL, sha256hex, dest string, progress func(done, total int64)) (cached bool, err error) {
	want, err := ParseSHA256(sha256hex)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if got, err := FileSHA256(dest); err == nil && got == want {
		return true, nil
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fetchError(ctx, rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("download %s: %s", rawURL, resp.Status)
	}
	total := resp.ContentLength
	if total > MaxSize {
		return false, fmt.Errorf("download %s: the server announces %d bytes, more than the %d a BusyBox could be", rawURL, total, MaxSize)
	}
	err = writeAtomic(dest, func(f *os.File) error {
		h := sha256.New()
		pw := &progressWriter{total: total, fn: progress}
		pw.report()
		n, err := io.Copy(io.MultiWriter(f, h, pw), io.LimitReader(resp.Body, MaxSize+1))
		if err != nil {
			return fetchError(ctx, rawURL, err)
		}
		if n > MaxSize {
			return fmt.Errorf("download %s: more than %d bytes, more than a BusyBox could be", rawURL, MaxSize)
		}
		if total >= 0 && n != total {
			return fmt.Errorf("download %s: got %d bytes, the server announced %d", rawURL, n, total)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("download %s: %w: got %s, want %s", rawURL, ErrChecksum, got, want)
		}
		return nil
	})
	return false, err
}

// fetchError says what went wrong with a request. A cancelled context wins
// over the transport's own wording, so that callers can tell Ctrl-C apart.
func fetchError(ctx context.Context, rawURL string, err error) error {
	if ctx.Err() != nil {
		// The cause says why, when a signal stopped it: "got hangup".
		if c := context.Cause(ctx); c != nil && c != ctx.Err() {
			return fmt.Errorf("download %s: %v: stopped, nothing kept: %w", rawURL, c, ctx.Err())
		}
		return fmt.Errorf("download %s: stopped, nothing kept: %w", rawURL, ctx.Err())
	}
	// *url.Error repeats the method and URL; keep only what happened.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("download %s: %w", rawURL, err)
}

type progressWriter struct {
	done, total int64
	fn          func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.report()
	return len(b), nil
}

func (p *progressWriter) report() {
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}

// Install copies the BusyBox at src to dest (mode 0755), after checking that
// it is a static executable for this machine. dest is replaced atomically.
func Install(src, dest string) error {
	if err := CheckStatic(src); err != nil {
		return err
	}
	in, err := openRegular(src, true)
	if err != nil {
		return fmt.Errorf("install BusyBox: %w", err)
	}
	defer in.Close()
	// What is copied is what was checked: the open file, not the path again.
	if err := checkStaticFile(in, src); err != nil {
		return err
	}
	return writeAtomic(dest, func(f *os.File) error {
		if _, err := io.Copy(f, in); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dest, err)
		}
		return nil
	})
}

// writeAtomic fills a temporary file beside dest and renames it over dest:
// open(O_CREAT|O_EXCL) + write + fchmod + fsync + rename(2). Readers see the
// old file or the whole new one, never half of it. On failure the temporary
// file is removed.
func writeAtomic(dest string, fill func(f *os.File) error) error {
	return writeAtomicMode(dest, 0o755, fill)
}

// writeAtomicMode is writeAtomic with the file's mode.
func writeAtomicMode(dest string, mode os.FileMode, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".*.part")
	if err != nil {
		return fmt.Errorf("create a temporary file in %s: %w", dir, err)
	}
	// Locked while it is being written: a .part file nobody holds was
	// left by a writer that was killed, and RemoveStaleParts removes it.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return fmt.Errorf("rename %s to %s: %w", f.Name(), dest, err)
	}
	// Make the rename itself durable; failing here loses nothing written.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// RemoveStaleParts removes the temporary files that a write of dest left
// when it was killed (kill -9, a crash): .<name>.*.part beside dest that no
// writer holds locked. It returns the paths it removed.
func RemoveStaleParts(dest string) ([]string, error) {
	parts, err := filepath.Glob(filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".*.part"))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, p := range parts {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // not one of ours: a .part we write is a regular file
		}
		f, err := OpenRegular(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if err := os.Remove(p); err == nil {
				removed = append(removed, p)
			}
		}
		f.Close()
	}
	return removed, nil
}
