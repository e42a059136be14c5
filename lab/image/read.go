package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxJSON bounds index.json, manifests and configs: a hostile layout cannot
// make us read gigabytes to find a tag.
const maxJSON = 4 << 20

// Resolve finds tag in dir/index.json (an empty tag picks the only manifest)
// and returns the manifest and config, every blob checked for size and digest.
func Resolve(dir, tag string) (Manifest, Image, error) {
	var idx Index
	var m Manifest
	var img Image
	if err := readJSON(filepath.Join(dir, ImageIndexFile), maxJSON, &idx); err != nil {
		return m, img, err
	}
	desc, err := pick(dir, idx, tag)
	if err != nil {
		return m, img, err
	}
	if err := readBlobJSON(dir, desc, &m); err != nil {
		return m, img, err
	}
	if err := readBlobJSON(dir, m.Config, &img); err != nil {
		return m, img, err
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return m, img, fmt.Errorf("image %s: config lists %d diff_ids for %d layers", dir, len(img.RootFS.DiffIDs), len(m.Layers))
	}
	for _, l := range m.Layers {
		if err := verifyBlob(dir, l); err != nil {
			return m, img, err
		}
	}
	return m, img, nil
}

func pick(dir string, idx Index, tag string) (Descriptor, error) {
	var tags []string
	for _, d := range idx.Manifests {
		name := d.Annotations[AnnotationRefName]
		if name == tag || (tag == "" && len(idx.Manifests) == 1) {
			if d.MediaType != MediaTypeImageManifest {
				return d, fmt.Errorf("image %s tag %q is a %s; only %s is run", dir, name, d.MediaType, MediaTypeImageManifest)
			}
			return d, nil
		}
		tags = append(tags, name)
	}
	return Descriptor{}, fmt.Errorf("image %s has no tag %q (tags: %q)", dir, tag, tags)
}

func readJSON(path string, limit int64, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("read %s: larger than %d bytes", path, limit)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func readBlobJSON(dir string, d Descriptor, v any) error {
	if d.Size > maxJSON {
		return fmt.Errorf("image %s: %s blob %s is %d bytes, more than %d", dir, d.MediaType, d.Digest, d.Size, maxJSON)
	}
	if err := verifyBlob(dir, d); err != nil {
		return err
	}
	data, _ := os.ReadFile(blobPath(dir, d.Digest))
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return fmt.Errorf("decode %s blob %s: %w", d.MediaType, d.Digest, err)
	}
	return nil
}

// verifyBlob checks that d's blob exists with d's size and digest.
func verifyBlob(dir string, d Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("image %s: %s blob: %w", dir, d.MediaType, err)
	}
	path := blobPath(dir, d.Digest)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image %s: blob %s (%s): %w", dir, d.Digest, d.MediaType, err)
	}
	defer f.Close()
	got := NewDigester()
	n, err := io.Copy(got, io.LimitReader(f, d.Size+1))
	if err != nil {
		return fmt.Errorf("read blob %s: %w", path, err)
	}
	if n != d.Size {
		return fmt.Errorf("image %s: blob %s is %d bytes, the manifest says %d", dir, d.Digest, n, d.Size)
	}
	if got.Digest() != d.Digest {
		return fmt.Errorf("image %s: blob %s does not match its digest (corrupted or altered)", dir, d.Digest)
	}
	return nil
}
