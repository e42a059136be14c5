package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestProgressRoundTrip(t *testing.T) {
	w := Workdir{Root: t.TempDir()}
	p, err := w.ReadProgress()
	if err != nil || len(p) != 0 {
		t.Fatalf("fresh: %v %v", p, err)
	}
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	if err := w.RecordProgress("chroot", at); err != nil {
		t.Fatal(err)
	}
	if err := w.RecordProgress("unshare", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p, err = w.ReadProgress()
	if err != nil || !p["chroot"].Equal(at) || !p["unshare"].Equal(at.Add(time.Minute)) {
		t.Fatalf("read back %v, %v", p, err)
	}
	left, _ := filepath.Glob(filepath.Join(w.Root, ".progress-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A symlink planted where the progress goes is replaced, never followed,
// and a damaged file is an error, not a crash.
func TestProgressHostile(t *testing.T) {
	w := Workdir{Root: t.TempDir()}
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, w.ProgressFile()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadProgress(); err == nil {
		t.Error("read through a symlink")
	}
	if err := w.RecordProgress("run", time.Now()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if fi, err := os.Lstat(w.ProgressFile()); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("progress is not a regular file now: %v %v", fi, err)
	}
	if err := os.WriteFile(w.ProgressFile(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadProgress(); err == nil {
		t.Error("damaged progress read without error")
	}
}
