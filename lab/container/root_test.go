package container

import (
	"os"
	"path/filepath"
	"testing"
)

// A root that an image made may hold symlinks where the run puts its mount
// points and device files: furnish replaces them, and writes nothing
// outside the root.
func TestFurnishReplacesPlantedLinks(t *testing.T) {
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	root := filepath.Join(tmp, "root")
	for _, d := range []string{outside, filepath.Join(root, "sys")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(outside, filepath.Join(root, "dev"))       // absolute, out
	os.Symlink("../outside", filepath.Join(root, "proc")) // relative, out
	os.WriteFile(filepath.Join(root, "bin"), nil, 0o644)  // a file where CopyIn needs a dir
	self, _ := os.Executable()
	if err := furnish(root, true, []CopyIn{{Dest: "bin/tool", Src: self}}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("furnish wrote outside the root: %v", ents)
	}
	for _, d := range []string{"proc", "dev", "sys", "bin"} {
		if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory after furnish: %v", d, err)
		}
	}
	for _, f := range []string{"dev/null", "dev/zero", "dev/urandom", "bin/tool"} {
		if fi, err := os.Lstat(filepath.Join(root, f)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s is not a regular file after furnish: %v", f, err)
		}
	}
}
