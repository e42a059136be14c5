package proc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseNSLink(t *testing.T) {
	for _, c := range []struct {
		in    string
		typ   string
		inode uint64
		bad   bool
	}{
		{in: "pid:[4026531836]", typ: "pid", inode: 4026531836},
		{in: "cgroup:[4026531835]", typ: "cgroup", inode: 4026531835},
		{in: "pid:4026531836", bad: true},
		{in: ":[1]", bad: true},
		{in: "pid:[x]", bad: true},
		{in: "pid:[1", bad: true},
		{in: "", bad: true},
	} {
		typ, ino, err := ParseNSLink(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: no error", c.in)
			}
			continue
		}
		if err != nil || typ != c.typ || ino != c.inode {
			t.Errorf("%q: %q %d %v, want %q %d", c.in, typ, ino, err, c.typ, c.inode)
		}
	}
}

func nsFixture(t *testing.T) Root {
	root := t.TempDir()
	d := filepath.Join(root, "42", "ns")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"pid": "pid:[4026532182]", "mnt": "mnt:[4026532180]", "uts": "net:[4026531833]", "net": "garbage",
	} {
		if err := os.Symlink(target, filepath.Join(d, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/tmp/lab/rootfs", filepath.Join(root, "42", "root")); err != nil {
		t.Fatal(err)
	}
	status := "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nPPid:\t40\nNSpid:\t42\t1\n" +
		"CapInh:\t0000000000000000\nCapPrm:\t0000000020000420\nCapEff:\t0000000020000420\nCapBnd:\t0000000020000420\nNoNewPrivs:\t1\nSeccomp:\t2\n"
	if err := os.WriteFile(filepath.Join(root, "42", "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "43"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "43", "status"), []byte("Name:\tinit\nState:\tS (sleeping)\nPPid:\t0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Root(root)
}

func TestNS(t *testing.T) {
	r := nsFixture(t)
	if ino, err := r.NS(42, "pid"); err != nil || ino != 4026532182 {
		t.Errorf("pid: %d %v", ino, err)
	}
	if _, err := r.NS(42, "time"); !errors.Is(err, ErrNoNamespace) {
		t.Errorf("missing time entry: %v, want ErrNoNamespace", err)
	}
	if _, err := r.NS(99, "pid"); !errors.Is(err, ErrExited) {
		t.Errorf("missing process: %v, want ErrExited", err)
	}
	if _, err := r.NS(42, "uts"); err == nil {
		t.Error("a uts link that names a net namespace was accepted")
	}
	if _, err := r.NS(42, "net"); err == nil {
		t.Error("a garbage link was accepted")
	}
	if got, err := r.Link(42, "root"); err != nil || got != "/tmp/lab/rootfs" {
		t.Errorf("root: %q %v", got, err)
	}
	if _, err := r.Link(99, "root"); !errors.Is(err, ErrExited) {
		t.Errorf("root of a missing process: %v, want ErrExited", err)
	}
	if got := r.Path(42, "ns", "pid"); got != filepath.Join(string(r), "42", "ns", "pid") {
		t.Errorf("Path: %q", got)
	}
}

func TestSummary(t *testing.T) {
	r := nsFixture(t)
	s, err := r.Summary(42)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "sh" || s.State != "S" || s.PPid != 40 || !slices.Equal(s.NSpid, []int{42, 1}) || s.Inner() != 1 {
		t.Errorf("Summary(42) = %+v, inner %d", s, s.Inner())
	}
	if !s.HasPrivileges || s.CapEff != 0x20000420 || s.CapPrm != 0x20000420 || s.CapBnd != 0x20000420 || !s.NoNewPrivs || s.Seccomp != 2 {
		t.Errorf("Summary(42) privileges = %+v", s)
	}
	// No NSpid line (kernels before 4.1): the PID itself.
	s, err = r.Summary(43)
	if err != nil || !slices.Equal(s.NSpid, []int{43}) || s.PPid != 0 || s.HasPrivileges {
		t.Errorf("Summary(43) = %+v, %v", s, err)
	}
	if _, err := r.Summary(99); !errors.Is(err, ErrExited) {
		t.Errorf("missing process: %v, want ErrExited", err)
	}
}
