package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/image"
)

// layoutOf writes an OCI layout by hand whose one layer holds exactly
// hdrs (regular files hold "x"), with correct digests throughout: only the
// layer's contents are hostile.
func layoutOf(t *testing.T, hdrs ...*tar.Header) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	blob := func(data []byte) image.Digest {
		d := image.FromBytes(data)
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	var raw, gz bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	layer := image.Descriptor{MediaType: image.MediaTypeImageLayerGzip, Digest: blob(gz.Bytes()), Size: int64(gz.Len())}
	cfg, _ := json.Marshal(image.Image{Platform: image.Platform{OS: "linux"}, Config: image.ImageConfig{Cmd: []string{"/bin/busybox", "true"}},
		RootFS: image.RootFS{Type: "layers", DiffIDs: []image.Digest{image.FromBytes(raw.Bytes())}}})
	m, _ := json.Marshal(image.Manifest{SchemaVersion: 2, MediaType: image.MediaTypeImageManifest,
		Config: image.Descriptor{MediaType: image.MediaTypeImageConfig, Digest: blob(cfg), Size: int64(len(cfg))}, Layers: []image.Descriptor{layer}})
	idx, _ := json.Marshal(image.Index{SchemaVersion: 2, Manifests: []image.Descriptor{{
		MediaType: image.MediaTypeImageManifest, Digest: blob(m), Size: int64(len(m)),
		Annotations: map[string]string{image.AnnotationRefName: "latest"}}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return dir
}

// run --image refuses a hostile image with a clear error, writes nothing
// outside its unpack directory, and leaves nothing behind.
func TestRunImageRefusesHostileLayers(t *testing.T) {
	needLab(t)
	outside := t.TempDir() // where an escape would land
	runs := filepath.Join(workdir, "runs")
	// From runs/<name>/rootfs, ../../../ is the work directory's parent.
	up, _ := filepath.Rel(filepath.Join(runs, "x", "rootfs"), outside)
	for _, tc := range []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"dot-dot", []*tar.Header{{Name: up + "/pwned", Typeflag: tar.TypeReg, Mode: 0o644}}, "path with '..'"},
		{"absolute symlink out", []*tar.Header{{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "out/pwned", Typeflag: tar.TypeReg, Mode: 0o644}}, "leads out of the unpack directory"},
		{"device node", []*tar.Header{{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o600}}, "device node: refused"},
		{"whiteout of the parent", []*tar.Header{{Name: "bin/.wh...", Typeflag: tar.TypeReg, Mode: 0o644}}, "names no file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runUH(t, "run", "--cgroup-parent", cgParent, "--image", layoutOf(t, tc.hdrs...))
			if r.code == 0 || !strings.Contains(r.err, tc.want) || !strings.Contains(r.err, "unpack image") {
				t.Errorf("exit %d, want a refusal saying %q:\n%s%s", r.code, tc.want, r.out, r.err)
			}
			t.Logf("exit %d: %s", r.code, r.err)
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("written outside the unpack directory: %v", ents)
			}
			assertClean(t)
		})
	}
}
