package image

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var cfg = Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo hi"}, Env: []string{"PATH=/bin"}}

func TestSameTreeSameDigest(t *testing.T) {
	src := smallTree(t)
	a, err := Write(src, filepath.Join(t.TempDir(), "a"), "v1", cfg)
	must(t, err)
	// Times on disk change; the image must not.
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(filepath.Join(src, "etc/hostname"), later, later))
	b, err := Write(src, filepath.Join(t.TempDir(), "b"), "v1", cfg)
	must(t, err)
	if a.Manifest.Digest != b.Manifest.Digest || a.Layer.Digest != b.Layer.Digest {
		t.Errorf("two builds differ: manifest %s vs %s, layer %s vs %s",
			a.Manifest.Digest, b.Manifest.Digest, a.Layer.Digest, b.Layer.Digest)
	}
	must(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("other\n"), 0o644))
	c, err := Write(src, filepath.Join(t.TempDir(), "c"), "v1", cfg)
	must(t, err)
	if c.Manifest.Digest == a.Manifest.Digest {
		t.Errorf("a changed file kept digest %s", a.Manifest.Digest)
	}
}

func TestLayerHeadersAreFixed(t *testing.T) {
	src := smallTree(t)
	dir := filepath.Join(t.TempDir(), "img")
	r, err := Write(src, dir, "v1", cfg)
	must(t, err)
	f, err := os.Open(blobPath(dir, r.Layer.Digest))
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q mtime %v, want neither", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.ModTime.Unix() != 0 ||
			!h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || len(h.PAXRecords) != 0 {
			t.Errorf("%s: uid %d gid %d uname %q mtime %v atime %v pax %v", h.Name, h.Uid, h.Gid,
				h.Uname, h.ModTime, h.AccessTime, h.PAXRecords)
		}
		if h.Name == "tmp/" && h.Mode != 0o1777 {
			t.Errorf("tmp/ mode %o, want 1777", h.Mode)
		}
	}
	want := []string{"bin/", "bin/abs", "bin/sh", "bin/tool", "etc/", "etc/hostname", "tmp/"}
	if !slices.Equal(names, want) {
		t.Errorf("layer entries %q, want %q", names, want)
	}
}

func TestConfigAndIndex(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "img")
	r, err := Write(smallTree(t), dir, "v1", cfg)
	must(t, err)
	_, err = Write(smallTree(t), dir, "v2", cfg)
	must(t, err)
	m, img, err := Resolve(dir, "v1")
	must(t, err)
	if img.Architecture != runtime.GOARCH || img.OS != "linux" || !slices.Equal(img.Config.Entrypoint, cfg.Entrypoint) ||
		!slices.Equal(img.Config.Env, cfg.Env) || img.RootFS.DiffIDs[0] != r.DiffID || m.Layers[0].Digest != r.Layer.Digest {
		t.Errorf("Resolve(v1) = %+v, %+v", m, img)
	}
	// No Epoch: 1970-01-01, as the layer's file times, not Go's year 1.
	if img.Created == nil || !img.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created = %v, want 1970-01-01T00:00:00Z", img.Created)
	}
	var idx Index
	data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	must(t, json.Unmarshal(data, &idx))
	if len(idx.Manifests) != 2 {
		t.Errorf("index.json lists %d manifests after tags v1 and v2, want 2", len(idx.Manifests))
	}
	if _, err := Write(smallTree(t), dir, "-bad", cfg); err == nil {
		t.Errorf("tag -bad accepted")
	}
}

func TestSkopeoReadsIt(t *testing.T) {
	needTool(t, "skopeo", false)
	dir := filepath.Join(t.TempDir(), "img")
	r, err := Write(smallTree(t), dir, "v1", cfg)
	must(t, err)
	out, err := exec.Command("skopeo", "inspect", "oci:"+dir+":v1").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, stderr(err))
	}
	var got struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
		Env          []string
	}
	must(t, json.Unmarshal(out, &got))
	if got.Digest != r.Manifest.Digest.String() || !slices.Equal(got.Layers, []string{r.Layer.Digest.String()}) ||
		got.Architecture != runtime.GOARCH || got.Os != "linux" || !slices.Equal(got.Env, cfg.Env) {
		t.Errorf("skopeo inspect = %s\nwant manifest %s layer %s", out, r.Manifest.Digest, r.Layer.Digest)
	}
}

func TestUmociUnpacksIt(t *testing.T) {
	needTool(t, "umoci", true)
	src := busyboxTree(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "img")
	_, err := Write(src, dir, "v1", cfg)
	must(t, err)
	bundle := filepath.Join(tmp, "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", dir+":v1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	sameTree(t, src, filepath.Join(bundle, "rootfs"))
}

func TestUnpackRoundTrip(t *testing.T) {
	src := busyboxTree(t)
	tmp := t.TempDir()
	_, err := Write(src, filepath.Join(tmp, "img"), "v1", cfg)
	must(t, err)
	img, err := Unpack(filepath.Join(tmp, "img"), "v1", filepath.Join(tmp, "root"))
	must(t, err)
	sameTree(t, src, filepath.Join(tmp, "root"))
	if !slices.Equal(img.Config.Cmd, cfg.Cmd) {
		t.Errorf("Unpack config Cmd = %q", img.Config.Cmd)
	}
}

func stderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

func TestWriteRefusesSpecialFiles(t *testing.T) {
	src := smallTree(t)
	must(t, unix.Mkfifo(filepath.Join(src, "tmp/fifo"), 0o644))
	dir := filepath.Join(t.TempDir(), "img")
	_, err := Write(src, dir, "v1", cfg)
	if err == nil || !strings.Contains(err.Error(), "tmp/fifo") || !strings.Contains(err.Error(), "only directories, files and symlinks") {
		t.Errorf("Write with a fifo in the root = %v, want a refusal naming it", err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("refused Write left blobs: %v", blobs)
	}
}

func TestEntriesListTheLayer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "img")
	_, err := Write(smallTree(t), dir, "v1", cfg)
	must(t, err)
	layers, err := Entries(dir, "v1")
	must(t, err)
	var names []string
	for _, e := range layers[0] {
		names = append(names, e.Name)
		if e.Name == "bin/abs" && (e.Type != tar.TypeSymlink || e.Linkname != "/bin/tool") {
			t.Errorf("bin/abs listed as %+v", e)
		}
	}
	if len(layers) != 1 || !slices.Contains(names, "bin/tool") || !slices.Contains(names, "tmp/") {
		t.Errorf("Entries = %d layers, names %q", len(layers), names)
	}
}
