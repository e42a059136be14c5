package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/underhood/underhood/lab/rootfs"
)

// smallTree is a root filesystem without BusyBox: dirs, a file, a setuid
// file, a relative and an absolute symlink.
func smallTree(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, "bin/tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("lab\n"), 0o644))
	must(t, os.Chmod(filepath.Join(dir, "tmp"), os.ModeSticky|0o777))
	must(t, os.Symlink("tool", filepath.Join(dir, "bin/sh")))
	must(t, os.Symlink("/bin/tool", filepath.Join(dir, "bin/abs")))
	return dir
}

// busyboxTree is the lab's own prepared root, applets linked.
func busyboxTree(t *testing.T) string {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs a static busybox at /bin/busybox (make setup)")
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := rootfs.Prepare(dir, "/bin/busybox", true); err != nil {
		t.Skip(err)
	}
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func needTool(t *testing.T, name string, root bool) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s (make setup installs it)", name)
	}
	if root && (testing.Short() || os.Geteuid() != 0) {
		t.Skipf("needs root (%s unpacks with owners)", name)
	}
}

// describe lists every entry of dir as "path mode [target|sha256]".
func describe(t *testing.T, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := describe(t, want), describe(t, got)
	if !slices.Equal(w, g) {
		for i := range max(len(w), len(g)) {
			a, b := "", ""
			if i < len(w) {
				a = w[i]
			}
			if i < len(g) {
				b = g[i]
			}
			if a != b {
				t.Fatalf("trees differ at entry %d:\n want %s\n got  %s", i, a, b)
			}
		}
	}
}

// hostileLayout writes a layout whose layers hold exactly the given tar
// headers (and, for regular files, the text "x"), tagged "t".
func hostileLayout(t *testing.T, layers ...[]*tar.Header) string {
	dir := filepath.Join(t.TempDir(), "layout")
	must(t, os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755))
	var descs []Descriptor
	var diffs []Digest
	for _, hdrs := range layers {
		var raw, gz bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, h := range hdrs {
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			must(t, tw.WriteHeader(h))
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x"))
			}
		}
		must(t, tw.Close())
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		must(t, zw.Close())
		d := FromBytes(gz.Bytes())
		must(t, os.WriteFile(blobPath(dir, d), gz.Bytes(), 0o644))
		descs = append(descs, Descriptor{MediaType: MediaTypeImageLayerGzip, Digest: d, Size: int64(gz.Len())})
		diffs = append(diffs, FromBytes(raw.Bytes()))
	}
	cfg, err := writeJSON(dir, MediaTypeImageConfig, Image{RootFS: RootFS{Type: "layers", DiffIDs: diffs}})
	must(t, err)
	m, err := writeJSON(dir, MediaTypeImageManifest, Manifest{SchemaVersion: 2, MediaType: MediaTypeImageManifest, Config: cfg, Layers: descs})
	must(t, err)
	m.Annotations = map[string]string{AnnotationRefName: "t"}
	must(t, writeLayoutFile(dir))
	must(t, writeIndex(dir, m))
	return dir
}
