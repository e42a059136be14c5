package image

// The JSON of an OCI image layout, field by field, written out by hand
// like the tar: what goes into an image can be read here, in one place
// (and underhood's start-up pays for no other package's init). Each type
// names the page of the image-spec v1.1 it follows, under
// https://github.com/opencontainers/image-spec/blob/v1.1.1/.
//
// Fields are in the spec's order: encoding/json writes them in declared
// order, so the order decides the bytes and the digests. A field the spec
// makes OPTIONAL is left out when empty; a REQUIRED one is always written.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"time"
)

// Media types (media-types.md) and the annotation that tags a manifest in
// index.json (annotations.md, "Pre-Defined Annotation Keys").
const (
	MediaTypeImageIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeImageManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeImageConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeImageLayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeImageLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"

	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// The files at the top of a layout (image-layout.md, "Content").
const (
	ImageLayoutFile    = "oci-layout"
	ImageLayoutVersion = "1.0.0"
	ImageIndexFile     = "index.json"
)

// ImageLayout is the oci-layout file (image-layout.md, "oci-layout file").
type ImageLayout struct {
	Version string `json:"imageLayoutVersion"`
}

// Index is index.json (image-index.md, "Image Index Property
// Descriptions"). Writing a tag rewrites it with the other tags' entries,
// so it and Descriptor carry every field the spec gives: nothing a tool
// put there is lost.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"` // 2
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Manifest names an image's config and layers (manifest.md, "Image
// Manifest Property Descriptions").
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"` // 2
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"` // base layer first
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Descriptor points at a blob by media type, digest and size
// (descriptor.md, "Properties"; platform: image-index.md).
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"` // the blob itself, base64
	Platform     *Platform         `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Platform is what an image runs on (image-index.md, "platform"; the same
// fields sit at the top of an image config, config.md).
type Platform struct {
	Architecture string   `json:"architecture"` // GOARCH's names: amd64, arm64…
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// Image is the image config (config.md, "Properties"), as far as underhood
// writes and reads it: author and history are left out, and a config that
// has them still reads.
type Image struct {
	Created  *time.Time  `json:"created,omitempty"`
	Platform             // architecture, os…, at the top level
	Config   ImageConfig `json:"config,omitzero"` // OPTIONAL, so left out when empty
	RootFS   RootFS      `json:"rootfs"`
}

// ImageConfig is how to run the image (config.md, "config"): the fields
// underhood writes and runs by, in the spec's order. The others (User,
// ExposedPorts, Volumes…) are not read.
type ImageConfig struct {
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// RootFS lists the layers' diff_ids, the digests of their uncompressed
// tars, base layer first (config.md, "rootfs").
type RootFS struct {
	Type    string   `json:"type"` // "layers"
	DiffIDs []Digest `json:"diff_ids"`
}

// Digest is a blob's content address: "sha256:" and the blob's SHA-256 in
// 64 lowercase hex digits (descriptor.md, "Digests" and "SHA-256"). The
// spec's grammar allows other algorithms; underhood writes and reads only
// sha256, the one every implementation must support.
type Digest string

const sha256Prefix = "sha256:"

// FromBytes is the digest of data.
func FromBytes(data []byte) Digest {
	sum := sha256.Sum256(data)
	return Digest(sha256Prefix + hex.EncodeToString(sum[:]))
}

// ParseDigest returns s as a Digest if it is a well-formed sha256 digest.
func ParseDigest(s string) (Digest, error) {
	d := Digest(s)
	return d, d.Validate()
}

// Validate says what is wrong with d, if anything.
func (d Digest) Validate() error {
	alg, enc, ok := strings.Cut(string(d), ":")
	switch {
	case !ok:
		return fmt.Errorf("digest %s: want sha256:<64 hex digits>", quote(string(d)))
	case alg != "sha256":
		return fmt.Errorf("digest %s: algorithm %s: only sha256 is read here", quote(string(d)), quote(alg))
	case len(enc) != 2*sha256.Size:
		return fmt.Errorf("digest %s: %d characters after sha256:, want 64 hex digits", quote(string(d)), len(enc))
	case strings.ContainsFunc(enc, func(r rune) bool { return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') }):
		return fmt.Errorf("digest %s: after sha256:, want 64 lowercase hex digits (0-9, a-f)", quote(string(d)))
	}
	return nil
}

// Algorithm is the part before the colon; a blob's file in a layout is
// blobs/<algorithm>/<encoded>.
func (d Digest) Algorithm() string {
	alg, _, _ := strings.Cut(string(d), ":")
	return alg
}

// Encoded is the part after the colon: the hash, in hex for sha256.
func (d Digest) Encoded() string {
	_, enc, _ := strings.Cut(string(d), ":")
	return enc
}

func (d Digest) String() string { return string(d) }

// quote quotes s for an error, cut short: a hostile index.json can hold a
// digest of megabytes.
func quote(s string) string {
	if len(s) > 160 {
		return fmt.Sprintf("%q… (%d bytes)", s[:160], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Digester is the digest of what is written to it, as it streams by.
type Digester struct{ h hash.Hash }

// NewDigester starts a sha256 digest.
func NewDigester() *Digester { return &Digester{sha256.New()} }

func (g *Digester) Write(p []byte) (int, error) { return g.h.Write(p) }

// Digest is the digest of everything written so far.
func (g *Digester) Digest() Digest { return Digest(sha256Prefix + hex.EncodeToString(g.h.Sum(nil))) }
