package mount

import (
	"os"
	"path/filepath"
	"testing"
)

const fixture = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 0:34 / /var/lib/underhood/runs/a/rootfs/proc rw,relatime - proc proc rw
41 40 0:35 / /var/lib/underhood/runs/a/rootfs/proc/sys rw master:3 - proc proc rw
42 22 0:6 /urandom /var/lib/underhood/runs/a/rootfs/dev/urandom rw - devtmpfs udev rw
43 22 0:36 / /mnt/with\040space rw - tmpfs none rw
50 22 0:37 / /var/lib/underhood/runs/ab rw - tmpfs none rw
`

func TestReadAndUnder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(p, []byte(fixture), 0o644); err != nil {
		t.Fatal(err)
	}
	infos, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 7 {
		t.Fatalf("%d mounts, want 7", len(infos))
	}
	if infos[0].Propagation() != "shared" || infos[2].Propagation() != "private" || infos[3].Propagation() != "slave" {
		t.Errorf("propagation: %s %s %s", infos[0].Propagation(), infos[2].Propagation(), infos[3].Propagation())
	}
	if infos[5].Mountpoint != "/mnt/with space" {
		t.Errorf("unescape: %q", infos[5].Mountpoint)
	}
	if infos[4].Root != "/urandom" || infos[4].FSType != "devtmpfs" || infos[4].Source != "udev" {
		t.Errorf("fields: %+v", infos[4])
	}
	under := Under(infos, "/var/lib/underhood/runs/a")
	var got []string
	for _, u := range under {
		got = append(got, u.Mountpoint)
	}
	want := []string{"/var/lib/underhood/runs/a/rootfs/dev/urandom", "/var/lib/underhood/runs/a/rootfs/proc/sys", "/var/lib/underhood/runs/a/rootfs/proc"}
	if len(got) != len(want) {
		t.Fatalf("under: %q, want %q (a sibling /runs/ab must not match)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("under[%d] = %q, want %q (deepest first)", i, got[i], want[i])
		}
	}
}

func TestReadMalformed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte("garbage line\n"), 0o644)
	if _, err := Read(p); err == nil {
		t.Error("malformed mountinfo accepted")
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestErrorNamesTheAttempt(t *testing.T) {
	e := &Error{Op: "mount", Source: "proc", Target: "/x/proc", FSType: "proc", Err: os.ErrPermission}
	if e.Error() != "mount proc on /x/proc: permission denied" {
		t.Errorf("%q", e.Error())
	}
}
