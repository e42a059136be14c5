package check

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/image"
)

var (
	stageLayers = stage{13, "Layers: the root as an overlay", Overlay}
	stageImage  = stage{14, "The image: the root as an OCI image", Image}
)

const filesystems = "nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\n"

// overlayByHand is the page's overlay on ~/container, mounted at $T/box/merged.
func (f *fixture) overlayByHand() *fixture {
	f.byHand()
	f.mkdir("box/upper")
	f.mkdir("box/work")
	f.mkdir("box/merged")
	f.mounts = append(f.mounts, "45 22 0:60 / $T/box/merged rw,relatime shared:9 - overlay overlay rw,lowerdir=$T/home/container,upperdir=$T/box/upper,workdir=$T/box/work")
	return f
}

// packed writes the fixture's root as an image at the Env's Image.
func (f *fixture) packed() *fixture {
	f.t.Helper()
	r, err := image.Write(f.env.Rootfs, f.env.Image, "latest", image.Config{Cmd: []string{"/bin/busybox", "sh"}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.tries[TrySkopeo] = `{"Digest":"` + r.Manifest.Digest.String() + `","Layers":["` + r.Layer.Digest.String() + `"]}`
	return f
}

// digests are architecture-specific (the config names it): goldens show
// none.
var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{12,64}`)

func TestGoldenLayersAndImage(t *testing.T) {
	cases := []struct {
		name  string
		stage stage
		setup func(f *fixture)
		code  int
	}{
		{"13-ok", stageLayers, nil, 0},
		{"13-no-overlayfs", stageLayers, func(f *fixture) { f.put("proc/filesystems", "nodev\tproc\n\text4\n") }, 1},
		{"13-byhand-not-mounted", stageLayers, func(f *fixture) { f.byHand() }, 1},
		{"13-byhand-empty-upper", stageLayers, func(f *fixture) { f.overlayByHand() }, 1},
		{"13-byhand-written", stageLayers, func(f *fixture) {
			f.overlayByHand()
			f.put("box/upper/hello.txt", "hi\n")
			f.put("box/upper/etc/motd", "hi\n")
		}, 0},
		{"13-byhand-no-rootfs", stageLayers, func(f *fixture) { f.overlayByHand(); f.rm("home/container/bin") }, 1},

		{"14-ok", stageImage, func(f *fixture) { f.packed() }, 0},
		{"14-missing", stageImage, nil, 1},
		{"14-byhand-missing", stageImage, func(f *fixture) { f.byHand() }, 1},
		{"14-byhand-ok", stageImage, func(f *fixture) { f.byHand().packed() }, 0},
		{"14-byhand-no-skopeo", stageImage, func(f *fixture) {
			f.byHand().packed()
			f.env.LookPath = func(string) (string, error) { return "", os.ErrNotExist }
		}, 0},
		{"14-byhand-altered-blob", stageImage, func(f *fixture) {
			f.byHand().packed()
			m, _, _ := image.Resolve(f.env.Image, "latest")
			b := filepath.Join(f.env.Image, "blobs", "sha256", m.Layers[0].Digest.Encoded())
			data, _ := os.ReadFile(b)
			data[len(data)/2] ^= 0xff
			os.WriteFile(b, data, 0o644)
		}, 1},
		// tar -C ~ container: every name starts with container/.
		{"14-byhand-tar-of-the-parent", stageImage, func(f *fixture) {
			f.byHand()
			root := f.env.Rootfs
			f.env.Rootfs = filepath.Dir(root)
			f.packed()
			f.env.Rootfs = root
		}, 1},
		{"14-byhand-untagged", stageImage, func(f *fixture) {
			f.byHand().packed()
			var idx image.Index
			p := filepath.Join(f.env.Image, "index.json")
			data, _ := os.ReadFile(p)
			json.Unmarshal(data, &idx)
			idx.Manifests[0].Annotations = nil
			data, _ = json.Marshal(idx)
			os.WriteFile(p, data, 0o644)
		}, 0},
		{"14-byhand-skopeo-refuses", stageImage, func(f *fixture) {
			f.byHand().packed()
			f.errors[TrySkopeo] = os.ErrInvalid
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.put("proc/filesystems", filesystems)
			if c.setup != nil {
				c.setup(f)
			}
			r := f.report(c.stage.n, c.stage.title, c.stage.run)
			got, code := f.text(r, false)
			golden(t, c.name, digestRE.ReplaceAllString(got, "sha256:DIGEST"))
			if code != c.code {
				t.Errorf("exit status %d, want %d", code, c.code)
			}
		})
	}
}

// A deletion through an overlay mounted by hand shows as a whiteout in
// the upper directory: a character device 0/0, which takes root to make.
func TestOverlayCheckCountsWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root: mknod of a whiteout")
	}
	f := newFixture(t).overlayByHand()
	f.put("proc/filesystems", filesystems)
	f.put("box/upper/hello.txt", "hi\n")
	f.mkdir("box/upper/bin")
	if err := unix.Mknod(f.path("box/upper/bin/busybox"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	r := f.report(stageLayers.n, stageLayers.title, stageLayers.run)
	last := r.Items[len(r.Items)-1]
	if last.Check != "upper directory" || last.Detail != "2 written (/bin, /hello.txt), 1 whiteout (/bin/busybox)" {
		t.Errorf("upper directory row: %+v", last)
	}
}
