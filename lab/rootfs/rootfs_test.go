package rootfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hostBusybox = "/bin/busybox"

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(hostBusybox); err != nil {
		t.Skipf("SKIP: needs a static BusyBox at %s (apt-get install busybox-static): %v", hostBusybox, err)
	}
}

func TestPrepareLayout(t *testing.T) {
	needBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := Prepare(dir, hostBusybox, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]string{"."}, Layout()...) {
		fi, err := os.Lstat(filepath.Join(dir, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want a 0755 directory", d, fi.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "bin"))
	if len(ents) != 1 || ents[0].Name() != "busybox" {
		t.Errorf("bin holds %v, want only busybox", ents)
	}
	fi, err := os.Lstat(Busybox(dir))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/busybox: %v, %v; want a regular 0755 file", fi.Mode(), err)
	}
	host, _ := os.Stat(hostBusybox)
	if os.SameFile(fi, host) {
		t.Error("bin/busybox is a hard link to the host's BusyBox, want a copy")
	}
	a, _ := os.ReadFile(hostBusybox)
	b, _ := os.ReadFile(Busybox(dir))
	if !bytes.Equal(a, b) {
		t.Error("bin/busybox differs from the host's BusyBox")
	}
	if err := Check(dir); err != nil {
		t.Errorf("Check after Prepare: %v", err)
	}
}

func TestPrepareTwiceKeepsTheCopy(t *testing.T) {
	needBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	for i := range 2 {
		if err := Prepare(dir, hostBusybox, true); err != nil {
			t.Fatalf("Prepare #%d: %v", i+1, err)
		}
	}
	first, _ := os.Stat(Busybox(dir))
	if err := Prepare(dir, hostBusybox, true); err != nil {
		t.Fatal(err)
	}
	again, _ := os.Stat(Busybox(dir))
	if !os.SameFile(first, again) {
		t.Error("a third Prepare replaced an identical bin/busybox; want it left alone")
	}
	assertNoTemp(t, dir)

	// A changed copy is replaced.
	if err := os.Chmod(Busybox(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(dir, hostBusybox, false); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(Busybox(dir)); fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox mode = %v after repair, want 0755", fi.Mode().Perm())
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "bin"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: bin/%s", e.Name())
		}
	}
}

func TestPrepareLinks(t *testing.T) {
	needBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	mine := []byte("#!/bin/busybox sh\necho mine\n")
	if err := os.WriteFile(filepath.Join(dir, "bin", "sh"), mine, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(dir, hostBusybox, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ls", "echo", "["} {
		target, err := os.Readlink(filepath.Join(dir, "bin", n))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q (%v), want -> busybox", n, target, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "bin", "sh")); !bytes.Equal(got, mine) {
		t.Error("an existing bin/sh was overwritten; want it left alone")
	}
}

func TestPrepareRefuses(t *testing.T) {
	needBusybox(t)
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	os.Mkdir(real, 0o755)
	if err := os.Symlink(real, filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ dir, want string }{
		{"/", "refusing the host's own /"},
		{"/tmp/..", "refusing the host's own /"},
		{filepath.Join(tmp, "link", "rootfs"), filepath.Join(tmp, "link") + " is a symbolic link"},
		{filepath.Join(tmp, "link"), filepath.Join(tmp, "link") + " is a symbolic link"},
	} {
		err := Prepare(tt.dir, hostBusybox, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Prepare(%s) err = %v, want it to contain %q", tt.dir, err, tt.want)
		}
	}
	if ents, _ := os.ReadDir(real); len(ents) != 0 {
		t.Errorf("%s was written to through the symlink: %v", real, ents)
	}
	if err := Prepare(filepath.Join(tmp, "dyn"), "/bin/ls", false); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("Prepare with /bin/ls: err = %v, want dynamically linked", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "dyn")); err == nil {
		t.Error("a refused Prepare created its directory")
	}
}

// A payload that ran as root in the shared tree may have planted symlinks to
// host paths. Preparing again must not write through them.
func TestPrepareDoesNotFollowPlantedLinks(t *testing.T) {
	needBusybox(t)
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	os.Mkdir(outside, 0o755)
	victim := filepath.Join(tmp, "victim")
	os.WriteFile(victim, []byte("host file"), 0o644)

	dir := filepath.Join(tmp, "rootfs")
	if err := Prepare(dir, hostBusybox, false); err != nil {
		t.Fatal(err)
	}
	os.Remove(Busybox(dir))
	if err := os.Symlink(victim, Busybox(dir)); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(dir, hostBusybox, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "host file" {
		t.Errorf("the file behind a planted bin/busybox symlink was overwritten: %q", got)
	}
	if fi, _ := os.Lstat(Busybox(dir)); !fi.Mode().IsRegular() {
		t.Errorf("bin/busybox is %v, want the symlink replaced by a regular file", fi.Mode())
	}

	os.RemoveAll(filepath.Join(dir, "bin"))
	os.Symlink(outside, filepath.Join(dir, "bin"))
	err := Prepare(dir, hostBusybox, true)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "bin")+" is a symbolic link") {
		t.Errorf("bin -> %s: err = %v, want a refusal naming bin", outside, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("%s was written to through bin: %v", outside, ents)
	}
	var nr *NotReadyError
	if err := Check(dir); !errors.As(err, &nr) {
		t.Errorf("Check with bin a symlink: err = %v, want NotReadyError", err)
	}
}

func TestCheck(t *testing.T) {
	needBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	wantFix := func(err error, problem string) {
		t.Helper()
		var nr *NotReadyError
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), problem) || strings.Contains(err.Error(), "underhood") {
			t.Errorf("Check err = %v, want %q and no CLI spelling (steps/ adds the fix)", err, problem)
		}
	}
	wantFix(Check(dir), "the directory is missing")
	for _, d := range Layout() {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	wantFix(Check(dir), "bin/busybox is missing")
	os.WriteFile(Busybox(dir), []byte("x"), 0o644)
	wantFix(Check(dir), "bin/busybox is not an executable file")
	os.Remove(filepath.Join(dir, "proc"))
	wantFix(Check(dir), "proc/ is missing")
	if err := Prepare(dir, hostBusybox, false); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Errorf("Check after Prepare: %v", err)
	}
}

func TestLayoutIsACopy(t *testing.T) {
	l := Layout()
	l[0] = "changed"
	if Layout()[0] != "bin" {
		t.Error("Layout returned the package's own slice")
	}
}

func TestFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	needBusybox(t)
	if err := Fresh(dir, hostBusybox); err != nil {
		t.Fatal(err)
	}
	for _, d := range Layout() {
		if fi, err := os.Lstat(filepath.Join(dir, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", d, fi, err)
		}
	}
	if err := Check(dir); err != nil {
		t.Errorf("Check after Fresh: %v", err)
	}
	if err := Fresh(dir, hostBusybox); err == nil {
		t.Error("Fresh on an existing directory succeeded")
	}
}
