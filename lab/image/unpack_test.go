package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
func dir(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755} }
func sym(name, to string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
}

// unpackNextToSentinel unpacks layout into <tmp>/dest with an empty
// <tmp>/sentinel beside it, and fails the test if anything but dest ever
// appears in <tmp> or in the sentinel.
func unpackNextToSentinel(t *testing.T, layout string) (string, error) {
	tmp := t.TempDir()
	sentinel := filepath.Join(tmp, "sentinel")
	must(t, os.Mkdir(sentinel, 0o755))
	dest := filepath.Join(tmp, "dest")
	_, err := Unpack(layout, "t", dest)
	for d, want := range map[string]int{sentinel: 0, tmp: 2} {
		if ents, _ := os.ReadDir(d); len(ents) > want {
			t.Errorf("after Unpack, %s holds %d entries, want at most %d: %v", d, len(ents), want, ents)
		}
	}
	if err != nil {
		if _, statErr := os.Lstat(dest); !os.IsNotExist(statErr) {
			t.Errorf("failed Unpack left %s behind", dest)
		}
	}
	return dest, err
}

func TestUnpackRefusesHostileLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]*tar.Header
		want   string
	}{
		{"dot-dot path", [][]*tar.Header{{reg("../sentinel/pwned")}}, `"../sentinel/pwned": path with '..'`},
		{"dot-dot inside", [][]*tar.Header{{dir("a/"), reg("a/../../sentinel/x")}}, "path with '..'"},
		{"absolute path", [][]*tar.Header{{reg("/tmp/pwned")}}, "absolute path"},
		{"write through absolute symlink", [][]*tar.Header{{sym("evil", "/"), reg("evil/pwned")}}, "leads out of the unpack directory"},
		{"write through relative symlink", [][]*tar.Header{{sym("evil", "../sentinel"), reg("evil/pwned")}}, "leads out of the unpack directory"},
		{"symlink from an earlier layer", [][]*tar.Header{{sym("evil", "../sentinel")}, {reg("evil/pwned")}}, "leads out of the unpack directory"},
		{"mkdir through symlink", [][]*tar.Header{{sym("evil", "../sentinel"), dir("evil/sub/")}}, "leads out of the unpack directory"},
		{"whiteout through symlink", [][]*tar.Header{{sym("evil", "../sentinel"), reg("evil/.wh.x")}}, "leads out of the unpack directory"},
		{"hard link out", [][]*tar.Header{{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../sentinel/f"}}}, "hard link"},
		{"hard link absolute", [][]*tar.Header{{{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}}, "hard link"},
		{"hard link through symlink", [][]*tar.Header{{sym("evil", "/etc"), {Name: "h", Typeflag: tar.TypeLink, Linkname: "evil/passwd"}}}, "leads out of the unpack directory"},
		{"char device", [][]*tar.Header{{{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}}, "device node: refused"},
		{"block device", [][]*tar.Header{{{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}}}, "device node: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := unpackNextToSentinel(t, hostileLayout(t, tc.layers...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unpack = %v, want an error containing %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestUnpackRefusesBrokenBlobs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(layout, blob string)
		want  string
	}{
		{"missing blob", func(_, blob string) { os.Remove(blob) }, "no such file"},
		{"wrong digest", func(_, blob string) {
			data, _ := os.ReadFile(blob)
			data[len(data)-1] ^= 0xff
			os.WriteFile(blob, data, 0o644)
		}, "does not match its digest"},
		{"wrong size", func(_, blob string) {
			f, _ := os.OpenFile(blob, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}, "the manifest says"},
		{"unknown tag", func(layout, _ string) {
			os.WriteFile(filepath.Join(layout, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
		}, `no tag "t"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layout := hostileLayout(t, []*tar.Header{reg("f")})
			m, _, err := Resolve(layout, "t")
			must(t, err)
			tc.spoil(layout, blobPath(layout, m.Layers[0].Digest))
			_, err = unpackNextToSentinel(t, layout)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unpack = %v, want an error containing %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestUnpackWhiteoutsAndModes(t *testing.T) {
	setuid := reg("bin/su")
	setuid.Mode = 0o4755
	layout := hostileLayout(t,
		[]*tar.Header{dir("a/"), reg("a/x"), reg("a/y"), dir("b/"), reg("b/z"), sym("bin/sh", "/bin/su"), setuid},
		[]*tar.Header{reg("a/.wh.x"), reg("b/.wh..wh..opq"), reg("b/new"), reg("bin/sh"),
			{Name: "bin/su2", Typeflag: tar.TypeLink, Linkname: "bin/su"}},
	)
	dest, err := unpackNextToSentinel(t, layout)
	must(t, err)
	got := strings.Join(describe(t, dest), "\n")
	want := strings.Join([]string{
		". drwxr-xr-x",
		"a drwxr-xr-x",
		"a/y -rw-r--r-- 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"b drwxr-xr-x",
		"b/new -rw-r--r-- 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"bin drwxr-xr-x",
		"bin/sh -rw-r--r-- 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"bin/su -rwxr-xr-x 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"bin/su2 -rwxr-xr-x 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
	}, "\n")
	a, _ := os.Stat(filepath.Join(dest, "bin/su"))
	b, _ := os.Stat(filepath.Join(dest, "bin/su2"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("bin/su2 is not a hard link to bin/su")
	}
	if got != want {
		t.Errorf("unpacked tree:\n%s\nwant (a/x whited out, b opaque, bin/sh replaced, setuid stripped):\n%s", got, want)
	}
}

func TestUnpackNeedsAFreshDest(t *testing.T) {
	layout := hostileLayout(t, []*tar.Header{reg("f")})
	dest := t.TempDir()
	if _, err := Unpack(layout, "t", dest); err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Errorf("Unpack into an existing dir = %v, want a 'file exists' refusal", err)
	}
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("refused Unpack removed the existing %s: %v", dest, err)
	}
}

// A whiteout must name a file: ".wh." alone would remove its whole
// directory, ".wh..." its parent.
func TestUnpackRefusesWhiteoutsOfNothing(t *testing.T) {
	for _, name := range []string{"a/.wh.", "a/.wh...", ".wh..", "a/.wh.."} {
		t.Run(name, func(t *testing.T) {
			layout := hostileLayout(t, []*tar.Header{dir("a/"), reg("a/x")}, []*tar.Header{reg(name)})
			_, err := unpackNextToSentinel(t, layout)
			if err == nil || !strings.Contains(err.Error(), "names no file") {
				t.Fatalf("Unpack = %v, want a whiteout that names no file refused", err)
			}
			t.Log(err)
		})
	}
}

// An absolute symlink pointing out (here at the sentinel's own absolute
// path, so that a write through it would show) is kept as a link, which
// the container resolves inside its root, but nothing is ever written
// through it, in the same layer or a later one.
func TestUnpackNeverWritesThroughAbsoluteLinks(t *testing.T) {
	tmp := t.TempDir()
	sentinel := filepath.Join(tmp, "sentinel")
	must(t, os.Mkdir(sentinel, 0o755))
	for i, layers := range [][][]*tar.Header{
		{{sym("out", sentinel), reg("out/pwned")}},
		{{sym("out", sentinel)}, {reg("out/pwned")}},
		{{sym("out", sentinel)}, {dir("out/sub/")}},
	} {
		dest := filepath.Join(tmp, fmt.Sprintf("dest%d", i))
		_, err := Unpack(hostileLayout(t, layers...), "t", dest)
		if err == nil || !strings.Contains(err.Error(), "leads out of the unpack directory") {
			t.Errorf("case %d: Unpack = %v, want a refusal", i, err)
		}
		if ents, _ := os.ReadDir(sentinel); len(ents) != 0 {
			t.Fatalf("case %d wrote outside the unpack directory: %v", i, ents)
		}
		if _, err := os.Lstat(dest); !os.IsNotExist(err) {
			t.Errorf("case %d: refused Unpack left %s", i, dest)
		}
	}
	// Alone, the link is kept as it is; a hard link to it is a second
	// link (link(2) does not follow it), not the file outside.
	dest := filepath.Join(tmp, "kept")
	_, err := Unpack(hostileLayout(t, []*tar.Header{sym("out", sentinel+"/f"),
		{Name: "h", Typeflag: tar.TypeLink, Linkname: "out"}}), "t", dest)
	must(t, err)
	for _, n := range []string{"out", "h"} {
		if target, err := os.Readlink(filepath.Join(dest, n)); err != nil || target != sentinel+"/f" {
			t.Errorf("%s reads %q, %v", n, target, err)
		}
	}
	if ents, _ := os.ReadDir(sentinel); len(ents) != 0 {
		t.Fatalf("wrote outside the unpack directory: %v", ents)
	}
}

// Broken beyond the layer blob: the config or the manifest missing, the
// index naming a manifest by a wrong digest, a layer whose uncompressed
// bytes are not its diff_id.
func TestUnpackRefusesBrokenMetadata(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(layout string, m Manifest, idx Index)
		want  string
	}{
		{"missing config", func(l string, m Manifest, _ Index) { os.Remove(blobPath(l, m.Config.Digest)) }, "no such file"},
		{"missing manifest", func(l string, _ Manifest, idx Index) { os.Remove(blobPath(l, idx.Manifests[0].Digest)) }, "no such file"},
		{"index names a wrong digest", func(l string, _ Manifest, idx Index) {
			idx.Manifests[0].Digest = FromBytes([]byte("something else"))
			data, _ := json.Marshal(idx)
			os.WriteFile(filepath.Join(l, "index.json"), data, 0o644)
		}, "no such file"},
		{"manifest altered", func(l string, _ Manifest, idx Index) {
			p := blobPath(l, idx.Manifests[0].Digest)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(data, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1), 0o644)
		}, "does not match its digest"},
		{"index names a sha512 digest", func(l string, _ Manifest, idx Index) {
			idx.Manifests[0].Digest = Digest("sha512:" + strings.Repeat("0", 128))
			data, _ := json.Marshal(idx)
			os.WriteFile(filepath.Join(l, "index.json"), data, 0o644)
		}, `algorithm "sha512": only sha256 is read here`},
		{"index names a path for a digest", func(l string, _ Manifest, idx Index) {
			idx.Manifests[0].Digest = "sha256:../../../../etc/passwd"
			data, _ := json.Marshal(idx)
			os.WriteFile(filepath.Join(l, "index.json"), data, 0o644)
		}, `digest "sha256:../../../../etc/passwd": 22 characters after sha256:`},
		{"diff_id wrong", func(l string, m Manifest, _ Index) {
			withDiffID(l, m, FromBytes([]byte("another tar")))
		}, "does not match diff_id"},
		{"diff_id not sha256", func(l string, m Manifest, _ Index) {
			withDiffID(l, m, Digest("md5:"+strings.Repeat("0", 32)))
		}, `diff_id: digest "md5:000`},
		{"not JSON", func(l string, _ Manifest, _ Index) {
			os.WriteFile(filepath.Join(l, "index.json"), []byte("<html>"), 0o644)
		}, "decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layout := hostileLayout(t, []*tar.Header{reg("f")})
			m, _, err := Resolve(layout, "t")
			must(t, err)
			var idx Index
			data, _ := os.ReadFile(filepath.Join(layout, "index.json"))
			must(t, json.Unmarshal(data, &idx))
			tc.spoil(layout, m, idx)
			_, err = unpackNextToSentinel(t, layout)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unpack = %v, want an error containing %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// withDiffID rewrites layout l's config with diffID as the layer's diff_id,
// and the manifest and index.json to match, every digest right.
func withDiffID(l string, m Manifest, diffID Digest) {
	var img Image
	data, _ := os.ReadFile(blobPath(l, m.Config.Digest))
	json.Unmarshal(data, &img)
	img.RootFS.DiffIDs[0] = diffID
	m.Config, _ = writeJSON(l, MediaTypeImageConfig, img)
	md, _ := writeJSON(l, MediaTypeImageManifest, m)
	md.Annotations = map[string]string{AnnotationRefName: "t"}
	os.Remove(filepath.Join(l, "index.json"))
	writeIndex(l, md)
}
