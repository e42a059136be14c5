// Package image writes a root filesystem as an OCI image layout (one gzip
// tar layer, a config, a manifest, index.json) and unpacks such a layout
// into a directory, refusing anything that would write outside it.
package image

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Layer writes the tar of rootfs to w, byte for byte the same for the same
// tree: entries in lexical order, owner 0:0 with no user or group names,
// every mtime at epoch, no atime or ctime, so Go's tar writer never needs a
// PAX record for times. Only directories, regular files and symlinks are
// taken; anything else (a device node, a socket) is refused.
func Layer(w io.Writer, rootfs string, epoch time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read root filesystem: %w", err)
		}
		if p == rootfs {
			return nil
		}
		return addEntry(tw, rootfs, p, epoch)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish layer tar of %s: %w", rootfs, err)
	}
	return nil
}

func addEntry(tw *tar.Writer, rootfs, p string, epoch time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("read root filesystem: %w", err)
	}
	rel, _ := filepath.Rel(rootfs, p)
	hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: epoch}
	if fi.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			return fmt.Errorf("read symlink %s: %w", p, err)
		}
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	default:
		return fmt.Errorf("%s is a %v: an image layer here holds only directories, files and symlinks", p, fi.Mode().Type())
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header for %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	return copyFile(tw, p, hdr.Size)
}

func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		return fmt.Errorf("read %s: %w (did it change during the build?)", p, err)
	}
	return nil
}

// gzipLayer writes the gzip of the layer to w and returns the digest of the
// uncompressed tar (the config's diff_id). The gzip header is left empty:
// no file name and mtime 0, so the compressed bytes are reproducible too.
func gzipLayer(w io.Writer, rootfs string, epoch time.Time) (Digest, error) {
	zw := gzip.NewWriter(w)
	diff := NewDigester()
	if err := Layer(io.MultiWriter(zw, diff), rootfs, epoch); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("compress layer: %w", err)
	}
	return diff.Digest(), nil
}
