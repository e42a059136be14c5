package busybox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotRecorded is a BusyBox whose checksum was never recorded.
var ErrNotRecorded = errors.New("no checksum recorded")

// SumPath is the file that records the SHA-256 of the verified BusyBox at
// path: path + ".sha256", in sha256sum(1)'s format.
func SumPath(path string) string { return path + ".sha256" }

// Record writes the SHA-256 of the BusyBox at path to SumPath(path) and
// returns it: done once the file is verified (downloaded with its pinned
// checksum, or checked static), so that what runs later can be compared.
func Record(path string) (string, error) {
	sum, err := FileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("record the checksum of %s: %w", path, err)
	}
	line := sum + "  " + filepath.Base(path) + "\n"
	err = writeAtomicMode(SumPath(path), 0o644, func(f *os.File) error {
		_, err := f.WriteString(line)
		return err
	})
	return sum, err
}

// Recorded is the SHA-256 recorded for the BusyBox at path.
func Recorded(path string) (string, error) {
	b, err := readSmall(SumPath(path), 256)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, ErrNotRecorded)
	}
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "", fmt.Errorf("%s: empty", SumPath(path))
	}
	sum, err := ParseSHA256(f[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", SumPath(path), err)
	}
	return sum, nil
}

// readSmall reads a regular file of at most max bytes, never following a
// symbolic link and never blocking on a FIFO.
func readSmall(path string, max int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", path, max)
	}
	return b, nil
}

// OpenRegular opens path for reading only if it is a regular file: a
// symbolic link is not followed (ELOOP), and a FIFO or a device is refused
// without blocking (O_NONBLOCK, then fstat).
func OpenRegular(path string) (*os.File, error) { return openRegular(path, false) }

// openRegular is OpenRegular that, with follow, follows a symbolic link.
func openRegular(path string, follow bool) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if !follow && errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; give the file it points to", path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fileType(fi.Mode()))
	}
	// Reads of a regular file never block; clear O_NONBLOCK all the same.
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// HostCopy is PrivateCopy of the verified BusyBox at path into dir, checked
// against the checksum recorded for path. A BusyBox verified before
// checksums were recorded gets its record now, if it is a static ELF.
func HostCopy(path, dir string) (string, error) {
	sum, err := Recorded(path)
	if errors.Is(err, ErrNotRecorded) {
		if err := CheckStatic(path); err != nil {
			return "", err
		}
		sum, err = Record(path)
	}
	if err != nil {
		return "", err
	}
	return PrivateCopy(path, sum, dir)
}

// TrustedHostCopy is HostCopy of the BusyBox at path or, where there is none
// yet, the first static BusyBox of LocalPaths, a file of the host's own
// that no payload reaches.
func TrustedHostCopy(path, dir string) (string, error) {
	p, err := HostCopy(path, dir)
	if err == nil {
		return p, nil
	}
	if local := LocalStatic(LocalPaths); len(local) > 0 {
		return local[0], nil
	}
	return "", err
}

// PrivateCopy returns dir/busybox, a copy of the BusyBox at src that is a
// static ELF for this machine with the SHA-256 want, in a directory (mode
// 0700) that only root on the host can reach. What runs on the host runs
// that copy: a payload can replace a root filesystem's bin/busybox, but
// not this file, and the copy is checked as it is written (src is read
// once), so what is checked is what runs. An existing copy with the right
// checksum is kept.
func PrivateCopy(src, want, dir string) (string, error) {
	if err := privateDir(dir); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, "busybox")
	if f, err := OpenRegular(dest); err == nil {
		ok := verifyFile(f, want) == nil
		f.Close()
		if ok {
			return dest, nil
		}
	}
	_, _ = RemoveStaleParts(dest)
	in, err := OpenRegular(src)
	if err != nil {
		return "", fmt.Errorf("verify BusyBox: %w", err)
	}
	defer in.Close()
	err = writeAtomicMode(dest, 0o755, func(f *os.File) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(in, MaxSize+1))
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dest, err)
		}
		if n > MaxSize {
			return fmt.Errorf("%s: more than %d bytes, more than a BusyBox could be", src, MaxSize)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("%s: %w: its SHA-256 is %s, but %s was recorded when it was verified", src, ErrChecksum, got, want)
		}
		return checkStaticFile(f, src)
	})
	if err != nil {
		return "", err
	}
	return dest, nil
}

// verifyFile checks that f has the SHA-256 want and is a static ELF.
func verifyFile(f *os.File, want string) error {
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, MaxSize+1)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: %w", f.Name(), ErrChecksum)
	}
	return checkStaticFile(f, f.Name())
}

// privateDir makes dir a real directory (no symbolic link) of root's with
// mode 0700.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%s); remove it", dir, fileType(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user; remove it", dir, st.Uid)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}
