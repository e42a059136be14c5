package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The sha256 of no bytes, from sha256sum </dev/null.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestDigest(t *testing.T) {
	if got := FromBytes(nil); got != "sha256:"+emptySHA256 {
		t.Errorf("FromBytes(nil) = %s", got)
	}
	g := NewDigester()
	g.Write([]byte("hello, "))
	g.Write([]byte("image"))
	if got, want := g.Digest(), FromBytes([]byte("hello, image")); got != want {
		t.Errorf("Digester = %s, FromBytes = %s", got, want)
	}
	if d := FromBytes(nil); d.Algorithm() != "sha256" || d.Encoded() != emptySHA256 {
		t.Errorf("%s: Algorithm %q, Encoded %q", d, d.Algorithm(), d.Encoded())
	}
	long := "sha256:" + strings.Repeat("a", 1<<20)
	for _, tc := range []struct{ in, want string }{
		{"sha256:" + emptySHA256, ""},
		{"", `digest "": want sha256:<64 hex digits>`},
		{emptySHA256, `digest "` + emptySHA256 + `": want sha256:<64 hex digits>`},
		{"sha512:" + emptySHA256 + emptySHA256, `algorithm "sha512": only sha256 is read here`},
		{"SHA256:" + emptySHA256, `algorithm "SHA256"`},
		{"sha256:" + emptySHA256[:63], "63 characters after sha256:, want 64 hex digits"},
		{"sha256:" + strings.ToUpper(emptySHA256), "want 64 lowercase hex digits"},
		{"sha256:../../../../etc/passwd" + emptySHA256[28:], `digest "sha256:../../../../etc/passwd`},
		{long, `digest "sha256:aaaa`},
	} {
		d, err := ParseDigest(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ParseDigest(%.20q) = %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ParseDigest(%.20q) = %v, want an error containing %q", tc.in, err, tc.want)
		case d != Digest(tc.in):
			t.Errorf("ParseDigest(%.20q) = %.20q", tc.in, d)
		}
	}
	if _, err := ParseDigest(long); err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "(1048583 bytes)") {
		t.Errorf("a digest of a megabyte: the error is %d bytes, want it cut short with the length", len(err.Error()))
	}
}

// The JSON carries the image-spec's field names, in its order, the
// optional ones left out when empty: these bytes are what
// github.com/opencontainers/image-spec v1.1.1's own types write.
func TestSpecJSON(t *testing.T) {
	d := FromBytes(nil)
	epoch := time.Unix(0, 0).UTC()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{Descriptor{MediaType: MediaTypeImageManifest, Digest: d, Size: 2, Annotations: map[string]string{AnnotationRefName: "v1"}},
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + emptySHA256 + `","size":2,"annotations":{"org.opencontainers.image.ref.name":"v1"}}`},
		{Descriptor{MediaType: "m", Digest: d, Size: 2, URLs: []string{"u"}, Data: []byte("{}"), Platform: &Platform{"arm", "linux", "10", []string{"f"}, "v7"}, ArtifactType: "a"},
			`{"mediaType":"m","digest":"sha256:` + emptySHA256 + `","size":2,"urls":["u"],"data":"e30=","platform":{"architecture":"arm","os":"linux","os.version":"10","os.features":["f"],"variant":"v7"},"artifactType":"a"}`},
		{Index{SchemaVersion: 2, MediaType: MediaTypeImageIndex},
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}`},
		{Manifest{SchemaVersion: 2, Config: Descriptor{MediaType: MediaTypeImageConfig, Digest: d}, Layers: []Descriptor{}},
			`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + emptySHA256 + `","size":0},"layers":[]}`},
		{Image{Created: &epoch, Platform: Platform{Architecture: "amd64", OS: "linux"},
			Config: ImageConfig{Env: []string{"A=1"}, Entrypoint: []string{"/e"}, Cmd: []string{"c"}, WorkingDir: "/"}, RootFS: RootFS{"layers", []Digest{d}}},
			`{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Entrypoint":["/e"],"Cmd":["c"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:` + emptySHA256 + `"]}}`},
		// config is OPTIONAL: left out when empty (image-spec's Go types write "config":{}).
		{Image{RootFS: RootFS{Type: "layers"}}, `{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":null}}`},
		{ImageLayout{ImageLayoutVersion}, `{"imageLayoutVersion":"1.0.0"}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("json of %T:\n got  %s %v\n want %s", tc.v, got, err, tc.want)
		}
	}
}

// Writing a tag keeps every field of another tool's entries in index.json.
func TestWriteKeepsOtherEntries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "img")
	other := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + emptySHA256 + `","size":0,` +
		`"urls":["https://example.org/m"],"annotations":{"org.opencontainers.image.ref.name":"theirs","x":"y"},` +
		`"platform":{"architecture":"arm64","os":"linux","variant":"v8"},"artifactType":"application/x-other"}`
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, ImageIndexFile), []byte(`{"schemaVersion":2,"mediaType":"`+MediaTypeImageIndex+`","manifests":[`+other+`],"annotations":{"k":"v"}}`), 0o644))
	r, err := Write(smallTree(t), dir, "ours", cfg)
	must(t, err)
	data, err := os.ReadFile(filepath.Join(dir, ImageIndexFile))
	must(t, err)
	mine, _ := json.Marshal(r.Manifest)
	want := `{"schemaVersion":2,"mediaType":"` + MediaTypeImageIndex + `","manifests":[` + other + `,` + string(mine) + `],"annotations":{"k":"v"}}`
	if string(data) != want {
		t.Errorf("index.json:\n got  %s\n want %s", data, want)
	}
}
