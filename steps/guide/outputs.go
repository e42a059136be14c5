package guide

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/underhood/underhood/lab/ui"
)

// Outputs runs every marked block of the pages in dir, in order, in one
// fresh lab, with binary as underhood and dir's parent as the repository
// the reader cloned, and rewrites the blocks whose output changed; with
// check it changes nothing and returns what is stale. It needs root.
func Outputs(o *ui.IO, binary, dir string, check bool) ([]string, error) {
	pages, err := Pages(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(binary, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var stale []string
	for _, p := range pages {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		text := string(raw)
		blocks, err := parseBlocks(p, text)
		if err != nil {
			return nil, err
		}
		changed := false
		var fresh []string
		for _, b := range blocks {
			if why := r.skip(b); why != "" {
				o.Note("%s:%d: skipped: %s", b.page, b.line, why)
				fresh = append(fresh, b.content)
				continue
			}
			got, err := r.run(b)
			if err != nil {
				return nil, err
			}
			loose := b.tags["loose"]
			if normalise(got, loose) == normalise(b.content, loose) {
				fresh = append(fresh, b.content)
				continue
			}
			changed = true
			stale = append(stale, fmt.Sprintf("%s:%d: the output differs:\n%s", b.page, b.line, lineDiff(b.content, got, loose)))
			fresh = append(fresh, got)
		}
		r.endPage()
		if !changed || check {
			continue
		}
		var out strings.Builder
		last := 0
		for i, b := range blocks {
			out.WriteString(text[last:b.start])
			out.WriteString(fresh[i])
			last = b.end
		}
		out.WriteString(text[last:])
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			return nil, err
		}
		o.Note("%s: rewrote its changed outputs", p)
	}
	if check {
		return stale, nil
	}
	return nil, nil
}

// lineDiff shows where two outputs part: the first line that differs
// after normalising, with a little context, as the page has it and as it
// is now.
func lineDiff(was, now string, loose bool) string {
	a, b := strings.Split(was, "\n"), strings.Split(now, "\n")
	i := 0
	for i < len(a) && i < len(b) && normalise(a[i], loose) == normalise(b[i], loose) {
		i++
	}
	var s strings.Builder
	from := max(0, i-2)
	for j := from; j < min(len(a), i+3); j++ {
		fmt.Fprintf(&s, "  page: %s\n", a[j])
	}
	for j := from; j < min(len(b), i+3); j++ {
		fmt.Fprintf(&s, "  now:  %s\n", b[j])
	}
	return s.String()
}

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b([a-z]+(?:-[a-z]+)*)-[0-9a-f]{8,10}\b`), "$1-RANDOM"},
	// Digests: of a tree whose times differ from lab to lab, or of an image
	// of the machine's own BusyBox.
	{regexp.MustCompile(`\bsha256:[0-9a-f]{12,64}\b`), "sha256:DIGEST"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)? ?(?:B|KiB|MiB|GiB)\b`), "SIZE"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|s)\b`), "TIME"},
	{regexp.MustCompile(`(\bas PID|\bhost PID|\bPID|(?:^|\s)-p|\bpid) \d{2,}\b`), "$1 PID"},
	{regexp.MustCompile(`/proc/\d{2,}/`), "/proc/PID/"},
	// ps in a PID namespace: PID 1 is the lesson, the numbers after it
	// depend on how many processes came and went before.
	{regexp.MustCompile(`(?m)^(\s*)(?:[2-9]|\d{2,})(\s+\d+\s+)`), "${1}PID${2}"},
	// The OOM killer may end the hog alone, or the hog and its feeder:
	// none or some is what counts.
	{regexp.MustCompile(`\boom_kill( =)? [1-9]\d*\b`), "oom_kill$1 SOME"},
	{regexp.MustCompile(`\bended [1-9]\d* process(?:es)?\b`), "ended SOME processes"},
	{regexp.MustCompile(`[ \t]+`), " "},
	{regexp.MustCompile(`(?m)^ | $`), ""},
}

var digitsRE = regexp.MustCompile(`\d+`)

// normalise is what two outputs must agree on: the same text, whatever the
// PIDs, random names, sizes, times and column widths; with loose, whatever
// any number. Where lines break does not count either: text wrapped at 80
// columns breaks elsewhere when a PID or an address has another length.
func normalise(s string, loose bool) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	if loose {
		s = digitsRE.ReplaceAllString(s, "N")
	}
	return strings.Join(strings.Fields(s), " ")
}

// docPages lists the guide's pages in reading order: the numbered steps,
