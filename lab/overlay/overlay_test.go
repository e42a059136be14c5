package overlay

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSupported(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"nodev\tsysfs\n\text4\nnodev\toverlay\n", true},
		{"nodev\tsysfs\n\text4\n", false},
	} {
		ProcFilesystems = filepath.Join(dir, "filesystems")
		t.Cleanup(func() { ProcFilesystems = "/proc/filesystems" })
		if err := os.WriteFile(ProcFilesystems, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Supported()
		var oe *Error
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &oe) || oe.Kind != Missing)) {
			t.Errorf("Supported() on %q = %v", tc.text, err)
		}
	}
}

func TestLayoutRefusedBeforeMount(t *testing.T) {
	dir := t.TempDir()
	l := Layer{Lower: filepath.Join(dir, "low,er"), Upper: filepath.Join(dir, "u"),
		Work: filepath.Join(dir, "w"), Target: filepath.Join(dir, "t")}
	err := l.Mount()
	var oe *Error
	if !errors.As(err, &oe) || oe.Kind != Layout || !strings.Contains(err.Error(), "low,er") {
		t.Fatalf("Mount with a comma in lower = %v, want a Layout error naming it", err)
	}
	if got := l.Options(); got != "lowerdir="+l.Lower+",upperdir="+l.Upper+",workdir="+l.Work {
		t.Errorf("Options() = %q", got)
	}
}

// inPrivateNS runs fn on a thread of its own in a new, private mount
// namespace. The thread is never unlocked, so Go ends it with fn, and the
// namespace (with any mount fn leaves) goes with it: the host never sees them.
func inPrivateNS(t *testing.T, fn func()) {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces and overlay mounts)")
	}
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			t.Errorf("unshare mount namespace: %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Errorf("make / private: %v", err)
			return
		}
		fn()
	}()
	<-done
}

func mounted(t *testing.T, path string) bool {
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// treeHash hashes every name, mode, size, link target and content of dir.
func treeHash(t *testing.T, dir string) string {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d\n", p, fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintln(h, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func lowerTree(t *testing.T) string {
	lower := filepath.Join(t.TempDir(), "lower")
	for _, d := range []string{"bin", "etc/conf.d"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(lower, "bin/busybox"), "not really busybox")
	write(t, filepath.Join(lower, "etc/conf.d/a"), "a")
	if err := os.Symlink("busybox", filepath.Join(lower, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	return lower
}

func write(t *testing.T, path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Error(err)
	}
}

func layer(lower, dir, name string) Layer {
	return Layer{Lower: lower, Upper: filepath.Join(dir, name+"-upper"),
		Work: filepath.Join(dir, name+"-work"), Target: filepath.Join(dir, name)}
}

func TestFingerprint(t *testing.T) {
	lower := lowerTree(t)
	a, err := Fingerprint(lower)
	must(t, err)
	if b, _ := Fingerprint(lower); a != b || !strings.HasPrefix(a, "sha256:") {
		t.Fatalf("Fingerprint twice: %s, %s", a, b)
	}
	for name, change := range map[string]func(){
		"content": func() { write(t, filepath.Join(lower, "etc/conf.d/a"), "b") },
		"mode":    func() { must(t, os.Chmod(filepath.Join(lower, "bin/busybox"), 0o600)) },
		"link": func() {
			os.Remove(filepath.Join(lower, "bin/sh"))
			must(t, os.Symlink("other", filepath.Join(lower, "bin/sh")))
		},
		"new": func() { write(t, filepath.Join(lower, "etc/new"), "") },
	} {
		change()
		b, err := Fingerprint(lower)
		must(t, err)
		if b == a {
			t.Errorf("a change of %s kept fingerprint %s", name, a)
		}
		a = b
	}
}
