package ns

import (
	"os"
	"path/filepath"
	"testing"
)

// FindInit takes underhood-init beside underhood only when no one but its
// owner (root, or underhood's owner) could have put another program there.
func TestFindInit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(t *testing.T, dir, p string)
		dirMod os.FileMode
		use    bool
	}{
		{"missing", func(*testing.T, string, string) {}, 0o755, false},
		{"beside it", write(0o755), 0o755, true},
		{"private directory", write(0o700), 0o700, true},
		{"group-writable", write(0o775), 0o755, false},
		{"world-writable", write(0o757), 0o755, false},
		{"not executable", write(0o644), 0o755, false},
		{"in a world-writable directory", write(0o755), 0o777, false},
		{"a symlink", func(t *testing.T, dir, p string) {
			write(0o755)(t, dir, filepath.Join(dir, "real"))
			if err := os.Symlink("real", p); err != nil {
				t.Fatal(err)
			}
		}, 0o755, false},
		{"a directory", func(t *testing.T, _, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, 0o755, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bin")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(dir, "underhood")
			write(0o755)(t, dir, exe)
			p := filepath.Join(dir, InitProgram)
			tc.set(t, dir, p)
			if err := os.Chmod(dir, tc.dirMod); err != nil {
				t.Fatal(err)
			}
			want := selfExe
			if tc.use {
				want = p
			}
			if got := FindInit(exe); got != want {
				t.Errorf("FindInit = %q, want %q", got, want)
			}
		})
	}
}

// Owned by someone else than root and underhood's owner: not used.
func TestFindInitOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root: chown")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "underhood")
	write(0o755)(t, dir, exe)
	p := filepath.Join(dir, InitProgram)
	write(0o755)(t, dir, p)
	if got := FindInit(exe); got != p {
		t.Fatalf("root's own: FindInit = %q, want %q", got, p)
	}
	if err := os.Chown(p, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	if got := FindInit(exe); got != selfExe {
		t.Errorf("uid 12345's: FindInit = %q, want %q", got, selfExe)
	}
}

func write(mode os.FileMode) func(t *testing.T, dir, p string) {
	return func(t *testing.T, _, p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}
