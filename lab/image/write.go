package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Config is what the image says about running it.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	// Epoch is every file's mtime and the image's creation time; the zero
	// value means 1970-01-01, the usual SOURCE_DATE_EPOCH=0.
	Epoch time.Time
}

// Result is what Write produced, for the user and the journal.
type Result struct {
	Manifest Descriptor // as listed in index.json
	Config   Descriptor
	Layer    Descriptor
	DiffID   Digest // sha256 of the uncompressed layer tar
}

// Write makes dir an OCI image layout holding rootfs as one layer, tagged
// tag in index.json (org.opencontainers.image.ref.name). Other tags already
// in dir stay; the same tag is replaced.
func Write(rootfs, dir, tag string, cfg Config) (Result, error) {
	var r Result
	if err := checkTag(tag); err != nil {
		return r, err
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = time.Unix(0, 0) // not Go's zero time, year 1
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return r, fmt.Errorf("create image layout %s: %w", dir, err)
	}
	var err error
	if r.Layer, r.DiffID, err = writeLayer(rootfs, dir, cfg.Epoch.UTC()); err != nil {
		return r, err
	}
	if r.Config, err = writeJSON(dir, MediaTypeImageConfig, imageConfig(cfg, r.DiffID)); err != nil {
		return r, err
	}
	m := Manifest{SchemaVersion: 2, MediaType: MediaTypeImageManifest, Config: r.Config, Layers: []Descriptor{r.Layer}}
	if r.Manifest, err = writeJSON(dir, MediaTypeImageManifest, m); err != nil {
		return r, err
	}
	r.Manifest.Annotations = map[string]string{AnnotationRefName: tag}
	if err := writeLayoutFile(dir); err != nil {
		return r, err
	}
	return r, writeIndex(dir, r.Manifest)
}

func imageConfig(cfg Config, diffID Digest) Image {
	created := cfg.Epoch.UTC()
	return Image{
		Created:  &created,
		Platform: Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ImageConfig{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: "/"},
		RootFS:   RootFS{Type: "layers", DiffIDs: []Digest{diffID}},
	}
}

// writeLayer compresses the layer into a temporary blob, then renames it to
// its digest.
func writeLayer(rootfs, dir string, epoch time.Time) (Descriptor, Digest, error) {
	tmp, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), ".layer-*")
	if err != nil {
		return Descriptor{}, "", fmt.Errorf("create layer blob in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; removes it on failure
	defer tmp.Close()
	blob := NewDigester()
	cw := &countWriter{w: tmp, h: blob}
	diffID, err := gzipLayer(cw, rootfs, epoch)
	if err != nil {
		return Descriptor{}, "", err
	}
	if err := tmp.Close(); err != nil {
		return Descriptor{}, "", fmt.Errorf("write layer blob %s: %w", tmp.Name(), err)
	}
	d := blob.Digest()
	if err := os.Rename(tmp.Name(), blobPath(dir, d)); err != nil {
		return Descriptor{}, "", fmt.Errorf("store layer blob: %w", err)
	}
	return Descriptor{MediaType: MediaTypeImageLayerGzip, Digest: d, Size: cw.n}, diffID, nil
}

// writeJSON stores v as a blob. encoding/json writes struct fields in their
// declared order and map keys sorted, so the bytes (and the digest) repeat.
func writeJSON(dir, mediaType string, v any) (Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Descriptor{}, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	d := FromBytes(data)
	if err := os.WriteFile(blobPath(dir, d), data, 0o644); err != nil {
		return Descriptor{}, fmt.Errorf("store %s blob: %w", mediaType, err)
	}
	return Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

func writeLayoutFile(dir string) error {
	data, _ := json.Marshal(ImageLayout{Version: ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, ImageLayoutFile), data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, ImageLayoutFile), err)
	}
	return nil
}

// writeIndex lists m in dir/index.json under its tag, keeping other tags.
func writeIndex(dir string, m Descriptor) error {
	path := filepath.Join(dir, ImageIndexFile)
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeImageIndex}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &idx); err != nil {
			return fmt.Errorf("read existing %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read existing %s: %w", path, err)
	}
	keep := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationRefName] != m.Annotations[AnnotationRefName] {
			keep = append(keep, d)
		}
	}
	idx.Manifests = append(keep, m)
	data, _ := json.Marshal(idx)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func blobPath(dir string, d Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm(), d.Encoded())
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	h interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}
