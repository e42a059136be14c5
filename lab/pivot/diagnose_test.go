package pivot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiagnose(t *testing.T) {
	const root = "22 1 8:1 / / rw,relatime - ext4 /dev/vda rw\n"
	const rootShared = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	for _, c := range []struct {
		name, mountinfo, want string
	}{
		{"initramfs", "1 1 0:1 / / rw - rootfs rootfs rw\n", "initial ramfs"},
		{"shared root", rootShared + "40 22 8:1 /lab /lab/new rw - ext4 /dev/vda rw\n", "/ is a shared mount"},
		{"not a mount point", root, "/lab/new is not a mount point"},
		{"new root shared", root + "40 22 8:1 /lab /lab/new rw shared:5 - ext4 /dev/vda rw\n", "/lab/new is a shared mount"},
		{"parent shared", "22 1 8:1 / / rw - ext4 /dev/vda rw\n30 22 0:30 / /lab rw shared:7 - tmpfs tmpfs rw\n40 30 0:30 /new /lab/new rw - tmpfs tmpfs rw\n", "(/lab) is shared"},
		{"fine", root + "40 22 8:1 /lab /lab/new rw - ext4 /dev/vda rw\n", ""},
	} {
		p := filepath.Join(t.TempDir(), "mountinfo")
		if err := os.WriteFile(p, []byte(c.mountinfo), 0o644); err != nil {
			t.Fatal(err)
		}
		got := Diagnose(p, "/lab/new")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
