package guide

import "testing"

func TestParseBlocks(t *testing.T) {
	page := "intro\n<!-- output: sudo underhood steps -->\nold\n<!-- end -->\n" +
		"<!-- output(v1,loose)\n$ cd ~/container\n$ sudo chroot . /bin/busybox sh\n/ # busybox ps -A\n/ # exit\n-->\n```console\n```\n<!-- end -->\n"
	bs, err := parseBlocks("p.md", page)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 {
		t.Fatalf("%d blocks, want 2", len(bs))
	}
	if bs[0].content != "old\n" || len(bs[0].lines) != 1 || bs[0].lines[0].cmd != "sudo underhood steps" {
		t.Errorf("first block: %+v", bs[0])
	}
	b := bs[1]
	if !b.tags["v1"] || !b.tags["loose"] || len(b.lines) != 4 || b.lines[2].prompt != "/ # " || b.lines[2].cmd != "busybox ps -A" || !b.lines[1].host() {
		t.Errorf("second block: %+v", b)
	}
	for _, broken := range []string{
		"<!-- output: underhood steps -->\nno end\n",
		"<!-- output(bogus): underhood steps -->\n<!-- end -->\n",
		"<!-- output\n/ # busybox ls\n-->\n<!-- end -->\n",
	} {
		if _, err := parseBlocks("p.md", broken); err == nil {
			t.Errorf("accepted %q", broken)
		}
	}
}

// Written blanks what the runner fills in, and keeps the rest and the lines.
func TestWritten(t *testing.T) {
	page := "intro\n<!-- output: sudo underhood check 2 -->\n```console\nNext: sudo underhood check 3\n```\n<!-- end -->\nafter\n"
	got, err := Written("p.md", page)
	want := "intro\n<!-- output: sudo underhood check 2 -->\n\n\n\n<!-- end -->\nafter\n"
	if err != nil || got != want {
		t.Errorf("Written = %q, %v; want %q", got, err, want)
	}
}
