package image

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Unpack makes dest (which must not exist yet) the root filesystem of the
// image tagged tag in the layout dir, and returns the image's config.
// Every blob is checked against its size and digest before anything is
// written; layers are applied in order, whiteouts honoured. All writes go
// through an os.Root on dest, which resolves each path inside dest and
// refuses any symlink that would lead out of it. On any error dest is
// removed again.
func Unpack(dir, tag, dest string) (Image, error) {
	m, img, err := Resolve(dir, tag)
	if err != nil {
		return img, err
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		return img, fmt.Errorf("create unpack directory %s: %w", dest, err)
	}
	if err := applyAll(dir, dest, m, img); err != nil {
		if rmErr := os.RemoveAll(dest); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove partial unpack %s: %w", dest, rmErr))
		}
		return img, err
	}
	return img, nil
}

func applyAll(dir, dest string, m Manifest, img Image) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open unpack directory %s: %w", dest, err)
	}
	defer root.Close()
	for i, l := range m.Layers {
		if err := applyLayer(root, dir, l, img.RootFS.DiffIDs[i]); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
	}
	return nil
}

// applyLayer streams one layer blob through tar into root, and checks the
// uncompressed bytes against the config's diff_id.
func applyLayer(root *os.Root, dir string, l Descriptor, diffID Digest) error {
	f, err := os.Open(blobPath(dir, l.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch l.MediaType {
	case MediaTypeImageLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
		r = zr
	case MediaTypeImageLayer:
	default:
		return fmt.Errorf("media type %q: only tar and tar+gzip layers are read", l.MediaType)
	}
	if err := diffID.Validate(); err != nil {
		return fmt.Errorf("diff_id: %w", err)
	}
	got := NewDigester()
	tee := io.TeeReader(r, got)
	if err := applyTar(root, tar.NewReader(tee)); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("read to the end: %w", err)
	}
	if got.Digest() != diffID {
		return fmt.Errorf("uncompressed layer does not match diff_id %s", diffID)
	}
	return nil
}

func applyTar(root *os.Root, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := applyEntry(root, tr, hdr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// replace clears the way for name: anything there goes, unless both the old
// and the new entry are directories (a directory entry only updates mode).
func replace(root *os.Root, name string, dir bool) (exists bool, err error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if dir && fi.IsDir() {
		return true, nil
	}
	return false, root.RemoveAll(name)
}
