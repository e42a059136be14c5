package guide

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/busybox"
)

// The guide's own pages: the parser still finds the commands they show.
func TestGuideCommandsFound(t *testing.T) {
	pages, err := Pages("../../docs")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in ../../docs: %v", err)
	}
	n := 0
	for _, p := range append(pages, "../../README.md") {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n += len(guideCommands(string(raw)))
	}
	if n < 50 {
		t.Errorf("found only %d underhood commands in the guide: is the parser still finding them?", n)
	}
}

func TestArgs(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"sudo underhood unshare -- busybox ps -A", []string{"unshare", "--", "busybox", "ps", "-A"}},
		{"underhood check 3 --rootfs ~/container", []string{"check", "3", "--rootfs", "/home/you/container"}},
		{"underhood check N", []string{"check", "1"}},
		{"sudo underhood inspect NAME --pid PID", []string{"inspect", "box1", "--pid", "1"}},
		{"sudo underhood run --name box1 -- /bin/busybox sh -c 'busybox hostname; busybox ps -A'",
			[]string{"run", "--name", "box1", "--", "/bin/busybox", "sh", "-c", "busybox hostname; busybox ps -A"}},
		{"sudo underhood tour --no-pause --from 5 2>/dev/null | less", []string{"tour", "--no-pause", "--from", "5"}},
		{"underhood steps # where am I", []string{"steps"}},
		{"underhood steps; echo done", []string{"steps"}},
		{"underhood ps>out", []string{"ps"}},
		{`underhood run -- sh -c "echo ~"`, []string{"run", "--", "sh", "-c", "echo ~"}},
		{"sudo underhood", []string{}},
	} {
		got, err := Args(c.line)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Args(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{"busybox ps", "sudo", "", "underhood run 'unterminated"} {
		if got, err := Args(bad); err == nil {
			t.Errorf("Args(%q) = %q, want an error", bad, got)
		}
	}
}

// Lint hands the commands of code blocks and of the text to the check, each
// with whether it is only mentioned, and says where each refused one is.
func TestLint(t *testing.T) {
	page := "# Step 5\n" +
		"Run `sudo underhood unshare` (see `underhood ps`), not `ls`.\n" +
		"```console\n" +
		"$ sudo underhood unshare -- busybox ps -A\n" +
		"   1 0        busybox ps -A\n" +
		"$ ls\n" +
		"underhood bogus\n" +
		"```\n" +
		"curl -O " + busybox.DefaultURL + "\n" +
		"curl -O https://busybox.net/downloads/binaries/1.0-x86_64-linux-musl/busybox\n"
	path := filepath.Join(t.TempDir(), "page.md")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	var seen []string
	bad, err := Lint(path, func(args []string, mention bool) error {
		seen = append(seen, strings.Join(args, " ")+map[bool]string{true: " (mention)"}[mention])
		if len(args) > 0 && args[0] == "bogus" {
			return errors.New("unknown command")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"unshare (mention)", "ps (mention)", "unshare -- busybox ps -A", "bogus"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("checked %q, want %q", seen, want)
	}
	wantBad := []string{
		path + ":7: underhood bogus: unknown command",
		path + ": https://busybox.net/downloads/binaries/1.0-x86_64-linux-musl/busybox is not the pinned download " + busybox.DefaultURL,
	}
	if !reflect.DeepEqual(bad, wantBad) {
		t.Errorf("Lint said\n  %s\nwant\n  %s", strings.Join(bad, "\n  "), strings.Join(wantBad, "\n  "))
	}
	if _, err := Lint(filepath.Join(t.TempDir(), "none.md"), nil); err == nil {
		t.Error("Lint of a missing file: no error")
	}
}
