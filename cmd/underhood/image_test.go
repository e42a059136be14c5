package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// manifestDigest is the digest index.json gives the layout's one manifest.
func manifestDigest(t *testing.T, layout string) string {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest string }
	}
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || json.Unmarshal(data, &idx) != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json of %s: %v\n%s", layout, err, data)
	}
	return idx.Manifests[0].Digest
}

// The image step packs the lab's root into an OCI layout that skopeo and
// umoci read, with the same digest on every build; underhood and runc
// both run it and print the payload's output; run --image runs it too;
// nothing is left.
func TestImageRoundTrip(t *testing.T) {
	needLab(t)
	layout := filepath.Join(workdir, "image")
	t.Cleanup(func() { os.RemoveAll(layout) })
	r := runUH(t, "image", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.err, "the same manifest digest") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	first := manifestDigest(t, layout)
	if c := runUH(t, "check", stepNumber("image")); c.code != 0 || !strings.Contains(c.out, "bin/busybox among them") {
		t.Errorf("check of the image step: exit %d\n%s%s", c.code, c.out, c.err)
	}
	runs := 1
	if _, err := exec.LookPath("runc"); err == nil {
		runs = 2
		if !strings.Contains(r.err, "That is the round trip") {
			t.Errorf("no round trip through runc:\n%s", r.err)
		}
	} else {
		t.Log("no runc here: only underhood's run of the image (make setup installs runc)")
	}
	if n := strings.Count(r.out, "hello from the image: bin dev etc proc sys\n"); n != runs {
		t.Errorf("the payload's greeting printed %d times, want %d:\n%s", n, runs, r.out)
	}
	assertClean(t)

	r = runUH(t, "image", "--cgroup-parent", cgParent, "--", "/bin/busybox", "true")
	if r.code != 0 {
		t.Fatalf("second build: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if again := manifestDigest(t, layout); again != first {
		t.Errorf("two builds of the same root: manifest %s, then %s", first, again)
	}

	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "oci:"+layout+":latest").Output()
		var got struct{ Digest string }
		if err != nil || json.Unmarshal(out, &got) != nil || got.Digest != first {
			t.Errorf("skopeo inspect: %v, digest %q, want %s\n%s", err, got.Digest, first, out)
		}
	} else {
		t.Log("no skopeo here (make setup installs it)")
	}
	if _, err := exec.LookPath("umoci"); err == nil {
		b := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.Command("umoci", "unpack", "--image", layout+":latest", b).CombinedOutput(); err != nil {
			t.Errorf("umoci unpack: %v\n%s", err, out)
		}
		ours, _ := os.ReadFile(filepath.Join(workdir, "rootfs", "bin", "busybox"))
		theirs, err := os.ReadFile(filepath.Join(b, "rootfs", "bin", "busybox"))
		if err != nil || sha256.Sum256(ours) != sha256.Sum256(theirs) {
			t.Errorf("umoci's bin/busybox is not the root's: %v", err)
		}
	} else {
		t.Log("no umoci here (make setup installs it)")
	}

	// run --image, with the image's own command and with one given.
	r = runUH(t, "run", "--cgroup-parent", cgParent, "--image", layout+":latest", "--",
		"/bin/busybox", "sh", "-c", "echo from-image; busybox ls /bin")
	if r.code != 0 || !strings.Contains(r.out, "from-image\nbusybox\n") || !strings.Contains(r.err, "unpacked from the image") {
		t.Errorf("run --image: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
	for _, bad := range []string{filepath.Join(workdir, "no-such-image"), layout + ":no-such-tag"} {
		r := runUH(t, "run", "--image", bad)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || !strings.Contains(r.err, "--image") {
			t.Errorf("run --image %s: exit %d, %q; want exit 2 and one line", bad, r.code, r.err)
		}
	}
	assertClean(t)
}
