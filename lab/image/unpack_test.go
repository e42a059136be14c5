package image

import (
	"archive/tar"
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
