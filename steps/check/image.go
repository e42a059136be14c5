package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/image"
	"github.com/underhood/underhood/lab/ui"
)

// Image checks an OCI image layout of the root filesystem, as packing it
// leaves it (by hand: ~/image beside ~/container): the oci-layout file,
// index.json and its tags, every blob against its digest and size, the
// layer's files, and skopeo reading the layout as any tool would.
func Image(e Env) []Item {
	dir := e.Image
	redo := e.fix("", "sudo underhood image")
	layout := Item{"oci-layout", ui.OK, filepath.Join(dir, image.ImageLayoutFile) + ": version " + image.ImageLayoutVersion, ""}
	var lf image.ImageLayout
	data, err := os.ReadFile(filepath.Join(dir, image.ImageLayoutFile))
	if err == nil {
		err = json.Unmarshal(data, &lf)
	}
	switch {
	case err != nil:
		layout = Item{"oci-layout", ui.Fail, err.Error(), orFix(redo, fmt.Sprintf(`mkdir -p %s/blobs/sha256 && echo '{"imageLayoutVersion":"1.0.0"}' > %s`, dir, filepath.Join(dir, image.ImageLayoutFile)))}
	case lf.Version != image.ImageLayoutVersion:
		layout = Item{"oci-layout", ui.Fail, fmt.Sprintf("imageLayoutVersion %q, want %q", lf.Version, image.ImageLayoutVersion), orFix(redo, `echo '{"imageLayoutVersion":"1.0.0"}' > `+filepath.Join(dir, image.ImageLayoutFile))}
	}
	items := []Item{layout}
	if layout.Status != ui.OK {
		return append(items, skipped("index.json"), skipped("blobs"), skipped("layer"), skipped("skopeo"))
	}

	tag, idx := indexItem(e, dir, redo)
	items = append(items, idx)
	if idx.Status == ui.Fail {
		return append(items, skipped("blobs"), skipped("layer"), skipped("skopeo"))
	}
	m, _, err := image.Resolve(dir, tag)
	if err != nil {
		return append(items, Item{"blobs", ui.Fail, err.Error(), orFix(redo, "each blob's file name is its sha256 (sha256sum "+filepath.Join(dir, "blobs/sha256")+"/*), and each descriptor gives its size in bytes (stat -c %s)")},
			skipped("layer"), skipped("skopeo"))
	}
	items = append(items, Item{"blobs", ui.OK, fmt.Sprintf("the manifest names a config (%s) and %d %s, every size and sha256 right", shortDigest(m.Config.Digest.String()), len(m.Layers), plural(len(m.Layers), "layer", "layers")), ""})
	items = append(items, layerItem(e, dir, tag, redo))
	return append(items, skopeoItem(e, dir, tag))
}

// indexItem reads index.json and picks the tag to look at: the only one,
// or latest.
func indexItem(e Env, dir, redo string) (string, Item) {
	const name = "index.json"
	var idx image.Index
	data, err := os.ReadFile(filepath.Join(dir, image.ImageIndexFile))
	if err == nil {
		err = json.Unmarshal(data, &idx)
	}
	write := `{"schemaVersion":2,"manifests":[{"mediaType":"` + image.MediaTypeImageManifest + `","digest":"sha256:…","size":…,"annotations":{"` + image.AnnotationRefName + `":"latest"}}]}`
	if err != nil {
		return "", Item{name, ui.Fail, err.Error(), orFix(redo, "write "+filepath.Join(dir, image.ImageIndexFile)+": "+write)}
	}
	var tags []string
	for _, d := range idx.Manifests {
		tags = append(tags, d.Annotations[image.AnnotationRefName])
	}
	switch {
	case len(idx.Manifests) == 0:
		return "", Item{name, ui.Fail, "lists no manifest", orFix(redo, "name the manifest in it: "+write)}
	case len(idx.Manifests) == 1 && tags[0] == "":
		return "", Item{name, ui.Warn, "one manifest, without a tag: skopeo and umoci find images by the annotation " + image.AnnotationRefName,
			`add "annotations":{"` + image.AnnotationRefName + `":"latest"} to its entry`}
	case len(idx.Manifests) == 1:
		return tags[0], Item{name, ui.OK, "one manifest, tag " + tags[0], ""}
	}
	for _, t := range tags {
		if t == "latest" {
			return t, Item{name, ui.OK, fmt.Sprintf("%d manifests (tags %s): looking at latest", len(tags), strings.Join(tags, " ")), ""}
		}
	}
	return "", Item{name, ui.Fail, fmt.Sprintf("%d manifests (tags %q) and none is latest", len(tags), tags), "tag the one to check latest"}
}

// layerItem looks for the root's BusyBox in the layers.
func layerItem(e Env, dir, tag, redo string) Item {
	const name = "layer"
	layers, err := image.Entries(dir, tag)
	if err != nil {
		return Item{name, ui.Fail, err.Error(), orFix(redo, "make the layer with tar -C "+e.Rootfs+" -cf layer.tar . then gzip -n it")}
	}
	n, found := 0, false
	for _, l := range layers {
		for _, en := range l {
			n++
			if strings.TrimPrefix(en.Name, "./") == "bin/busybox" {
				found = true
			}
		}
	}
	if !found {
		return Item{name, ui.Fail, fmt.Sprintf("%d entries and no bin/busybox: the tar is not of the root's inside", n),
			orFix(redo, "tar from inside the root, so that names start at its top: tar -C "+e.Rootfs+" -cf layer.tar .")}
	}
	return Item{name, ui.OK, fmt.Sprintf("%d entries, bin/busybox among them", n), ""}
}

// skopeoItem has skopeo read the layout, as any tool of the trade would.
func skopeoItem(e Env, dir, tag string) Item {
	const name = "skopeo"
	if _, err := e.LookPath("skopeo"); err != nil {
		return Item{name, ui.Warn, "not installed, so no second opinion", "sudo make setup installs it (apt-get install skopeo)"}
	}
	ref := dir
	if tag != "" {
		ref += ":" + tag
	}
	out, err := e.Try(Probe{Kind: TrySkopeo, Path: ref})
	var got struct{ Digest string }
	if err == nil {
		err = json.Unmarshal([]byte(out), &got)
	}
	if err != nil {
		return Item{name, ui.Fail, "skopeo inspect oci:" + ref + ": " + err.Error(), "what skopeo says is wrong is what any tool would refuse: fix it, or pack again"}
	}
	return Item{name, ui.OK, "skopeo inspect oci:" + ref + " reads it: Digest " + shortDigest(got.Digest), ""}
}

func orFix(lab, byHand string) string {
	if lab != "" {
		return lab
	}
	return byHand
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
