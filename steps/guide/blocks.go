package guide

import (
	"fmt"
	"regexp"
	"strings"
)

// The guide's outputs. A page marks a command, or a session of commands,
// whose output the runner fills in:
//
//	<!-- output: sudo underhood unshare -- busybox ps -A -->
//	```console
//	… filled in …
//	```
//	<!-- end -->
//
// or, for several commands and shells started by them:
//
//	<!-- output(v1,loose)
//	$ cd ~/container
//	$ sudo chroot . /bin/busybox sh
//	/ # busybox ls /proc
//	/ # exit
//	-->
//
// A line's prompt is everything up to its first "$ " or "# ". "$ " lines
// go to one bash per block, in the home directory; a "$ " line followed by
// other prompts starts a shell that reads those lines, until the next "$ "
// line. Tags: v1 or v2 (run only where the memory controller is that cgroup
// version: the output names the layout), noswap (run only without swap),
// loose (numbers do not count when comparing), error (a command may fail to
// run, to show the mistake). A block that cannot run here is left as it is,
// and said so.
//
// The commands run as root in a fresh lab: HOME is a new directory shown as
// /home/you, underhood's work directory ($UNDERHOOD_HOME) a new one shown as
// /var/lib/underhood (the temporary paths have the same lengths, so tables
// stay aligned), sudo runs its arguments as they are, colour is off. Every
// page sees what the pages before it left, as a reader working through the
// guide would. A block is rewritten only when its output changed beyond
// what normalise forgives (PIDs, random names, sizes, times).

// typedLine is one command of a block, with the prompt it is typed at.
type typedLine struct{ prompt, cmd string }

func (l typedLine) host() bool { return l.prompt == "$ " }

type block struct {
	page       string
	line       int // of the marker, for messages
	tags       map[string]bool
	lines      []typedLine
	start, end int    // the byte range of the content, between the marker and <!-- end -->
	content    string // what the page has now
}

var (
	markerRE = regexp.MustCompile(`(?s)<!-- output(?:\(([a-z0-9,-]*)\))?(?::\s*(.*?)\s*-->|\n(.*?)\n-->)\n`)
	endRE    = regexp.MustCompile(`(?m)^<!-- end -->$`)
)

func parseBlocks(page, text string) ([]*block, error) {
	var out []*block
	pos := 0
	for {
		m := markerRE.FindStringSubmatchIndex(text[pos:])
		if m == nil {
			return out, nil
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
		b := &block{page: page, line: strings.Count(text[:m[0]], "\n") + 1, tags: map[string]bool{}, start: m[1]}
		if m[2] >= 0 {
			for _, t := range strings.Split(text[m[2]:m[3]], ",") {
				switch t {
				case "v1", "v2", "noswap", "loose", "error":
					b.tags[t] = true
				default:
					return nil, fmt.Errorf("%s:%d: unknown tag %q", page, b.line, t)
				}
			}
		}
		if m[4] >= 0 {
			b.lines = []typedLine{{"$ ", text[m[4]:m[5]]}}
		} else {
			for _, l := range strings.Split(text[m[6]:m[7]], "\n") {
				if strings.TrimSpace(l) == "" {
					continue
				}
				p := promptEnd(l)
				if p < 0 {
					return nil, fmt.Errorf("%s:%d: %q has no prompt ($ or #)", page, b.line, l)
				}
				b.lines = append(b.lines, typedLine{l[:p], l[p:]})
			}
		}
		if len(b.lines) == 0 || !b.lines[0].host() {
			return nil, fmt.Errorf("%s:%d: a block starts with a $ command", page, b.line)
		}
		e := endRE.FindStringIndex(text[b.start:])
		if e == nil {
			return nil, fmt.Errorf("%s:%d: no <!-- end --> after the output marker", page, b.line)
		}
		b.end = b.start + e[0]
		b.content = text[b.start:b.end]
		out = append(out, b)
		pos = b.end
	}
}

// promptEnd is where the prompt of l ends: after its first "$ " or "# ".
func promptEnd(l string) int {
	i, j := strings.Index(l, "$ "), strings.Index(l, "# ")
	switch {
	case i < 0 && j < 0:
		return -1
	case i < 0 || (j >= 0 && j < i):
		return j + 2
	}
	return i + 2
}

// Written is the text of a page as its authors wrote it: every generated
// output's content (between its marker, which stays, and <!-- end -->)
// is blanked, its line breaks kept so that line numbers still hold.
func Written(page, text string) (string, error) {
	blocks, err := parseBlocks(page, text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	pos := 0
	for _, bl := range blocks {
		b.WriteString(text[pos:bl.start])
		b.WriteString(strings.Repeat("\n", strings.Count(bl.content, "\n")))
		pos = bl.end
	}
	b.WriteString(text[pos:])
	return b.String(), nil
}
