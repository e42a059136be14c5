package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWritesAndDeletesLandInUpper(t *testing.T) {
	lower := lowerTree(t)
	before := treeHash(t, lower)
	dir := t.TempDir()
	a, b := layer(lower, dir, "a"), layer(lower, dir, "b")
	inPrivateNS(t, func() {
		for _, l := range []Layer{a, b} {
			if err := l.Mount(); err != nil {
				t.Errorf("Mount: %v", err)
				return
			}
		}
		write(t, filepath.Join(a.Target, "hello"), "from a")
		for _, p := range []string{"bin/sh", "etc/conf.d/a", "etc/conf.d"} {
			if err := os.Remove(filepath.Join(a.Target, p)); err != nil {
				t.Error(err)
			}
		}
		if err := os.Mkdir(filepath.Join(a.Target, "etc/conf.d"), 0o755); err != nil {
			t.Error(err)
		}
		got, err := Changes(a.Upper)
		if err != nil {
			t.Error(err)
		}
		want := []Change{{"/bin", Written}, {"/bin/sh", Deleted}, {"/etc", Written},
			{"/etc/conf.d", Opaque}, {"/hello", Written}}
		if !slices.Equal(got, want) {
			t.Errorf("Changes(upper) = %v\nwant %v", got, want)
		}
		if data, err := os.ReadFile(filepath.Join(a.Upper, "hello")); string(data) != "from a" {
			t.Errorf("upper/hello = %q, %v", data, err)
		}
		// b shares the lower and sees none of a's changes.
		if _, err := os.Lstat(filepath.Join(b.Target, "bin/sh")); err != nil {
			t.Errorf("second overlay lost bin/sh: %v", err)
		}
		if _, err := os.Stat(filepath.Join(b.Target, "hello")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("second overlay sees the first one's file: %v", err)
		}
		for _, l := range []Layer{a, b} {
			if err := l.Unmount(); err != nil {
				t.Error(err)
			}
			if mounted(t, l.Target) {
				t.Errorf("%s still in mountinfo after Unmount", l.Target)
			}
			for _, d := range []string{l.Upper, l.Work, l.Target} {
				if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left after Unmount: %v", d, err)
				}
			}
		}
	})
	if after := treeHash(t, lower); after != before {
		t.Errorf("lower changed: hash %s before, %s after", before, after)
	}
}

func TestUpperOnOverlayIsRefused(t *testing.T) {
	lower := lowerTree(t)
	dir := t.TempDir()
	a := layer(lower, dir, "a")
	inPrivateNS(t, func() {
		if err := a.Mount(); err != nil {
			t.Errorf("Mount: %v", err)
			return
		}
		defer a.Unmount()
		b := layer(lower, a.Target, "b")
		err := b.Mount()
		var oe *Error
		if !errors.As(err, &oe) || oe.Kind != UpperFS {
			t.Errorf("Mount with upper on an overlay = %v, want an UpperFS error", err)
		}
		t.Logf("upper on overlay: %v", err)
	})
}

func TestLowerStackedTooDeepIsRefused(t *testing.T) {
	lower := lowerTree(t)
	dir := t.TempDir()
	inPrivateNS(t, func() {
		// Each overlay's merged view is the next one's lower; the kernel
		// stops at its stacking depth (2) and the error must say lower.
		var stack []Layer
		defer func() {
			for _, l := range slices.Backward(stack) {
				if err := l.Unmount(); err != nil {
					t.Error(err)
				}
			}
		}()
		low := lower
		for i := range 4 {
			l := layer(low, dir, string(rune('a'+i)))
			err := l.Mount()
			if err == nil {
				stack = append(stack, l)
				low = l.Target
				continue
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Kind != LowerFS {
				t.Errorf("overlay %d deep = %v, want a LowerFS error", i+1, err)
			}
			t.Logf("overlay %d deep: %v", i+1, err)
			for _, d := range []string{l.Upper, l.Work, l.Target} {
				if _, err := os.Lstat(d); !os.IsNotExist(err) {
					t.Errorf("failed Mount left %s: %v", d, err)
				}
			}
			return
		}
		t.Errorf("kernel stacked 4 overlays; expected a depth limit")
	})
}

func TestUnmountAfterFailedRun(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (umount2)")
	}
	dir := t.TempDir()
	l := layer(lowerTree(t), dir, "never")
	for _, d := range []string{l.Upper, l.Work, l.Target} {
		must(t, os.MkdirAll(d, 0o755))
	}
	if err := l.Unmount(); err != nil {
		t.Fatalf("Unmount of a layer never mounted = %v, want its dirs removed", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
