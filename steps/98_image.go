package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/bundle"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/image"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// ImageTag is the tag the image step gives the lab's image.
const ImageTag = "latest"

// ImagePayload is what the round trip runs from the image, twice.
const ImagePayload = `echo "hello from the image:" $(busybox ls /)`

// imageEnv is the environment the image's config carries.
var imageEnv = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/"}

func init() {
	register(&Step{Name: "image", Title: "The image: the root as an OCI image", Part: Beyond, Kind: Container,
		Long: "Packs the root filesystem into an OCI image layout, by hand: one tar layer\n" +
			"with fixed owners and times, its sha256 digests, a config, a manifest and\n" +
			"index.json, in the work directory's image/. Builds it twice to show the\n" +
			"digest is the same, lets skopeo read it where installed, then runs it\n" +
			"twice: with underhood (as run --image does) and with runc, from a bundle\n" +
			"made of it. With -- CMD, both runs run CMD.",
		Options: WithMemory | WithPauses,
		Page:    "15-image.md",
		Code:    []string{"lab/image/layer.go Layer", "lab/image/spec.go", "lab/image/write.go Write", "lab/image/unpack.go Unpack", "lab/bundle/bundle.go Spec", "lab/bundle/run.go Run"},
		Done:    imageDone, Run: Image,
		Explain: Explanation{
			What: "Writes the lab's root filesystem as an OCI image layout: a gzip tar of the tree (entries sorted, owner 0:0, every time at 1970-01-01), a JSON config naming the command, environment and the tar's sha256 (diff_id), a manifest naming the config and the layer by their sha256, and index.json pointing at the manifest under the tag latest. Then it runs that image with underhood and with runc.",
			Why: "An image is nothing more than that: tarballs and a little JSON, each file named by its sha256, so that whoever receives it can check every byte. Any tool that reads the layout (skopeo, umoci, podman, containerd) can take the learner's root from here. " +
				"Fixed owners, times and order make the same tree give the same digest on every build.",
			Shell: []string{
				"mkdir -p ~/image/blobs/sha256 && cd ~/image",
				"tar -C ~/container --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf layer.tar .",
				"diff=$(sha256sum < layer.tar | cut -d' ' -f1)   # the layer's diff_id",
				"gzip -n layer.tar && layer=$(sha256sum < layer.tar.gz | cut -d' ' -f1)",
				"mv layer.tar.gz blobs/sha256/$layer   # named by its digest",
				"# then config.json, the manifest and index.json, typed out on the page:",
				"skopeo inspect oci:$HOME/image:latest",
				"sudo umoci unpack --image ~/image:latest /tmp/bundle && ls /tmp/bundle/rootfs",
				"sudo rm -r /tmp/bundle",
			},
			Syscalls: []string{
				"read every file of the root in lexical order → archive/tar → gzip → sha256",
				"rename(blobs/sha256/.layer-*, blobs/sha256/<digest>)",
				"write(config, manifest): encoding/json of lab/image/spec.go's types",
				"write(index.json), write(oci-layout)",
				"underhood: verify the digests, untar via os.Root into runs/<name>/rootfs",
				"runc: unpack into a bundle, write config.json, runc run --bundle",
			},
			Differs: "The tar and the digests are made by hand, with archive/tar and crypto/sha256, so that every byte of the layer can be read in lab/image; the JSON comes from lab/image/spec.go, the spec's fields typed out by hand, rather than from go-containerregistry, whose empty image is Docker-typed. " +
				"A real image has a layer per build step, stacked as the overlay lowers of the layers step; this one has a single layer. Unpacking refuses what a hostile image could use to write outside its directory: ../ paths, links leading out, device nodes.",
			Observe: "The same manifest digest twice, skopeo's Digest the same again, and the payload's greeting printed by both runs: underhood's and runc's. " +
				"What this does not isolate: the image is not signed; its digests show it arrived intact, not who made it.",
		},
		Check: StepCheck{Run: check.Image, Looks: "an OCI image layout of the root filesystem: oci-layout, index.json, every blob's digest and size, the layer's files (by hand: ~/image beside ~/container), and skopeo reading it",
			Target: func(e check.Env) string { return "the image layout " + e.Image },
			ByHand: "run your image: sudo underhood run --image ~/image"},
		Tour: TourStop{About: [2]string{
			"An image is a tar of the root and some JSON, every file named by its sha256.",
			"The lab's own root becomes one, that runc runs as well as underhood does.",
		}, Cmd: "sudo underhood image\n# then, any time: sudo underhood run --image /var/lib/underhood/image", Demo: (*tour).image},
	})
}

// imageDone: the image layout is there and every digest in it is right.
func imageDone(w state.Workdir) (bool, string) {
	m, _, err := image.Resolve(w.Image(), ImageTag)
	if err != nil {
		if _, statErr := os.Stat(w.Image()); errors.Is(statErr, os.ErrNotExist) {
			return false, "not packed"
		}
		return false, "broken: pack again"
	}
	if len(m.Layers) == 0 {
		return false, "broken: pack again"
	}
	return true, short(m.Layers[0].Digest.String())
}

// ImageSpec is the full container with the image tagged tag in the layout
// dir unpacked as its own root.
func ImageSpec(name, dir, tag string, limit int64, host cgroup.Host, parent string) container.Spec {
	s := RunSpec(name, "", limit, host, parent)
	s.Image, s.ImageTag = dir, tag
	return s
}

// ParseImageRef splits DIR[:TAG]; a directory that exists with a colon in
// its name is taken whole.
func ParseImageRef(ref string) (dir, tag string) {
	if fi, err := os.Stat(ref); err == nil && fi.IsDir() {
		return ref, ""
	}
	if i := strings.LastIndex(ref, ":"); i > 0 && !strings.Contains(ref[i+1:], "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// ImageCommand is what an image runs by default (its entrypoint, then its
// command) and in what environment.
func ImageCommand(dir, tag string) (argv, env []string, err error) {
	_, img, err := image.Resolve(dir, tag)
	if err != nil {
		return nil, nil, err
	}
	argv = append(append([]string(nil), img.Config.Entrypoint...), img.Config.Cmd...)
	env = append([]string(nil), img.Config.Env...)
	has := func(k string) bool {
		for _, e := range env {
			if strings.HasPrefix(e, k+"=") {
				return true
			}
		}
		return false
	}
	for _, d := range containerEnv() {
		if k, _, _ := strings.Cut(d, "="); !has(k) {
			env = append(env, d)
		}
	}
	return argv, env, nil
}

// Image runs the image step.
func Image(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("image")
	root, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	host, err := memoryHost(opt)
	if err != nil {
		return err
	}
	argv := opt.Argv
	if len(argv) == 0 {
		argv = []string{"/bin/busybox", "sh", "-c", ImagePayload}
	}
	cfg := image.Config{Cmd: shell, Env: imageEnv}

	o.Note("%s packing %s by hand into the OCI image layout %s:", stepTag(o, s), root, w.Image())
	res, err := image.Write(root, w.Image(), ImageTag, cfg)
	if err != nil {
		return err
	}
	showImage(o, res)
	if err := sameTwice(w, root, cfg, res); err != nil {
		return err
	}
	o.Note("  built again elsewhere: the same manifest digest, %s (fixed owners, times and order).", short(res.Manifest.Digest.String()))
	if err := skopeoReads(o, w.Image(), res); err != nil {
		return err
	}

	if err := opt.more("underhood and runc run the image"); err != nil {
		return err
	}
	o.Note("")
	o.Note("%s underhood runs the image (as run --image does: verified, unpacked, then step 7):", stepTag(o, s))
	spec := ImageSpec(container.RandomName("image"), w.Image(), ImageTag, limitOf(opt), host, opt.CgroupParent)
	spec.Kind, spec.Argv = "image", argv
	_, spec.Env, _ = ImageCommand(w.Image(), ImageTag)
	var ours bytes.Buffer
	r, err := launchTee(o, w, opt, &spec, &ours)
	if err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}

	o.Note("")
	runc, err := exec.LookPath("runc")
	if err != nil {
		o.Warnf("no runc on this machine, so no second run: sudo make setup installs it (or apt-get install runc).")
		return imageEnd(o, w, s, r.ExitCode)
	}
	o.Note("%s runc runs a bundle made of the same image (config.json: namespaces, mounts, limits, capabilities):", stepTag(o, s))
	var theirs bytes.Buffer
	code, err := runcRun(o, w, opt, runc, argv, &theirs)
	if err != nil {
		return err
	}
	o.Note("")
	if code != r.ExitCode || theirs.String() != ours.String() {
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("runc's run (exit status %d) and underhood's (exit status %d) printed different things: see above", code, r.ExitCode)}
	}
	o.Note("%s the same image, run by underhood and by runc, printed the same; both are removed.", o.Bold("That is the round trip:"))
	return imageEnd(o, w, s, r.ExitCode)
}

func imageEnd(o *ui.IO, w state.Workdir, s *Step, code int) error {
	if code != 0 {
		return &ui.ExitError{Code: code}
	}
	_ = w.RecordProgress(s.Name, time.Now())
	o.Note("Run it again any time: sudo underhood run --image %s", w.Image())
	o.Next(s.NextHint())
	return nil
}

// showImage lists the layout's files and what each is.
func showImage(o *ui.IO, r image.Result) {
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:")[:12] + "…" }
	// Padded by what the terminal shows (… is one column, three bytes),
	// wrapped under the second column.
	row := func(file, what string) {
		o.NoteHanging("  "+file+strings.Repeat(" ", max(1, 28-ui.Width(file)))+what, 30)
	}
	row("oci-layout", `{"imageLayoutVersion":"1.0.0"}`)
	row("index.json", fmt.Sprintf("tag %s → the manifest %s", ImageTag, short(r.Manifest.Digest.String())))
	row(blob(r.Manifest.Digest.String()), fmt.Sprintf("manifest, %d bytes: config and layer, by digest", r.Manifest.Size))
	row(blob(r.Config.Digest.String()), fmt.Sprintf("config, %d bytes: Cmd, Env, the layer's diff_id", r.Config.Size))
	row(blob(r.Layer.Digest.String()), fmt.Sprintf("layer, tar+gzip, %s", cgroup.FormatSize(r.Layer.Size)))
}

// sameTwice builds the image again in a directory of its own and compares.
func sameTwice(w state.Workdir, root string, cfg image.Config, first image.Result) error {
	tmp, err := os.MkdirTemp(w.Root, ".image-again-")
	if err != nil {
		return fmt.Errorf("build the image again: %w", err)
	}
	defer os.RemoveAll(tmp)
	again, err := image.Write(root, filepath.Join(tmp, "image"), ImageTag, cfg)
	if err != nil {
		return err
	}
	if again.Manifest.Digest != first.Manifest.Digest {
		return fmt.Errorf("two builds of %s gave two manifests, %s and %s: did the root change meanwhile?", root, first.Manifest.Digest, again.Manifest.Digest)
	}
	return nil
}

// skopeoReads has skopeo read the layout, where it is installed.
func skopeoReads(o *ui.IO, dir string, r image.Result) error {
	if _, err := exec.LookPath("skopeo"); err != nil {
		o.Note("  (skopeo is not installed: sudo make setup installs it, to have another tool read the image)")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "skopeo", "inspect", "oci:"+dir+":"+ImageTag).Output()
	var got struct{ Digest string }
	if err == nil {
		err = json.Unmarshal(out, &got)
	}
	if err != nil {
		return fmt.Errorf("skopeo inspect oci:%s:%s: %w", dir, ImageTag, err)
	}
	if got.Digest != r.Manifest.Digest.String() {
		return fmt.Errorf("skopeo reads manifest %s, underhood wrote %s", got.Digest, r.Manifest.Digest)
	}
	o.Note("  skopeo inspect oci:%s:%s reads it: Digest %s, the same.", dir, ImageTag, short(got.Digest))
	return nil
}

// runcRun unpacks the image into a bundle in a run directory of the lab's
// (journaled, so that cleanup removes it after a kill), writes config.json
// from what the steps did, and has runc run it.
func runcRun(o *ui.IO, w state.Workdir, opt ContainerOptions, runc string, argv []string, tee *bytes.Buffer) (int, error) {
	name := container.RandomName("runc")
	if err := w.Ensure(); err != nil {
		return 0, err
	}
	j, err := w.CreateRun(name)
	if err != nil {
		return 0, err
	}
	host, _ := memoryHost(opt)
	defer func() {
		j.Close()
		_, _ = container.Cleanup(w, host, name)
	}()
	if err := j.Record(state.Entry{Op: "run", Name: name, Kind: "runc", Created: time.Now().UTC()}); err != nil {
		return 0, err
	}
	if _, err := image.Unpack(w.Image(), ImageTag, filepath.Join(j.Dir, "rootfs")); err != nil {
		return 0, err
	}
	_, env, err := ImageCommand(w.Image(), ImageTag)
	if err != nil {
		return 0, err
	}
	parent := opt.CgroupParent
	if parent == "" {
		parent = cgroup.DefaultParent
	}
	spec := bundle.Spec(bundle.Options{Name: name, Args: argv, Env: env, Hostname: name,
		Memory: max(limitOf(opt), 64<<20), Pids: cgroup.DefaultPids})
	spec.Linux.CgroupsPath = "/" + parent + "/" + name
	if err := bundle.Write(j.Dir, spec); err != nil {
		return 0, err
	}
	ctx := opt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	rt := bundle.Runtime{Path: runc, State: filepath.Join(j.Dir, "runc")}
	before := map[string]bool{}
	for _, d := range parentDirs(parent) {
		before[d] = true
	}
	defer func() {
		// runc makes the parent in every v1 hierarchy (blkio, cpuset…),
		// where underhood makes only those it uses: the new ones go again.
		// One that holds another run's cgroup is not empty; rmdir leaves it.
		for _, d := range parentDirs(parent) {
			if !before[d] {
				_ = os.Remove(d)
			}
		}
	}()
	return rt.Run(ctx, j.Dir, name, nil, io.MultiWriter(o.Out, tee), o.Err)
}

// parentDirs lists the directories of a parent cgroup and of the levels
// above it, in every hierarchy, deepest first.
func parentDirs(parent string) []string {
	var out []string
	for p := parent; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
		a, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", p))
		b, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", p))
		out = append(append(out, a...), b...)
	}
	return out
}

func (t *tour) image() (string, bool, error) {
	sub, _, errs := t.sub(nil)
	code, err := payloadStatus(Image(sub, t.w, t.options()))
	if err != nil {
		return "", false, err
	}
	if code != 0 || !strings.Contains(errs.String(), "the same manifest digest") {
		return fmt.Sprintf("the image did not go round as it should (exit status %d)", code), false, nil
	}
	return "A tar, its digests and three JSON files: an image that underhood and runc both run. It stays in the work directory, for run --image.", true, nil
}
