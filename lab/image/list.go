package image

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// Entry is one entry of a layer's tar, as `tar -tv` would list it.
type Entry struct {
	Name     string
	Type     byte // tar.TypeDir, TypeReg, TypeSymlink…
	Mode     int64
	Size     int64
	Linkname string
}

// Entries lists the entries of every layer of the image tagged tag in dir,
// layer by layer, after Resolve has checked every blob.
func Entries(dir, tag string) ([][]Entry, error) {
	m, _, err := Resolve(dir, tag)
	if err != nil {
		return nil, err
	}
	var out [][]Entry
	for i, l := range m.Layers {
		es, err := layerEntries(dir, l)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
		out = append(out, es)
	}
	return out, nil
}

func layerEntries(dir string, l Descriptor) ([]Entry, error) {
	f, err := os.Open(blobPath(dir, l.Digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if l.MediaType != MediaTypeImageLayer {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	var out []Entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read tar: %w", err)
		}
		out = append(out, Entry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Size: h.Size, Linkname: h.Linkname})
	}
}
