package steps

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/underhood/underhood/steps/guide"
)

var checkRE = regexp.MustCompile(`\bunderhood\s+check\s+(\d+)\b`)

// Every 'underhood check N' that README.md and the guide's pages show, in
// their text, code blocks and the commands of their outputs, names a step
// that exists; on a step's page it is that step's, unless its sentence
// names the other step ("step 7's check, underhood check 7, lists it").
// The steps were renumbered once, and the pages kept the old numbers.
func TestPagesCheckTheirOwnStep(t *testing.T) {
	pages, err := guide.Pages("../docs")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in ../docs: %v", err)
	}
	own := map[string]int{}
	for _, s := range All() {
		own[s.Page] = s.N
	}
	found := 0
	for _, p := range append(pages, "../README.md") {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text, err := guide.Written(p, string(raw))
		if err != nil {
			t.Fatal(err)
		}
		step := own[filepath.Base(p)]
		for _, u := range sentences(text) {
			for _, m := range checkRE.FindAllStringSubmatch(u.text, -1) {
				found++
				n, _ := strconv.Atoi(m[1])
				names := regexp.MustCompile(`(?i)\bsteps?\s+` + m[1] + `\b`).MatchString(u.text)
				switch {
				case n < 1 || n > len(All()):
					t.Errorf("%s:%d: %q: there is no step %d (steps %s)", p, u.line, m[0], n, Numbers())
				case step != 0 && n != step && !names:
					t.Errorf("%s:%d: %q on the page of step %d: check %d, or say in the sentence which step it is (step %d's check)", p, u.line, m[0], step, step, n)
				}
			}
		}
	}
	if found < 20 {
		t.Errorf("found only %d 'underhood check N' in the guide: is the test still reading the pages?", found)
	}
}

// unit is a sentence of a page's text, or a line of its code, with the
// line it starts on.
type unit struct {
	line int
	text string
}

var sentenceEndRE = regexp.MustCompile(`[.!?]\s`)

// sentences splits a page: a line of a code block, or of an output's
// marker, is one unit; a paragraph of text is split into its sentences,
// each with its lines joined, as a reader reads them.
func sentences(text string) []unit {
	var out []unit
	var para []string
	start := 0
	flush := func() {
		if len(para) == 0 {
			return
		}
		rest, line := strings.Join(para, "\n")+"\n", start
		for rest != "" {
			end := len(rest)
			if loc := sentenceEndRE.FindStringIndex(rest); loc != nil {
				end = loc[1]
			}
			out = append(out, unit{line, strings.Join(strings.Fields(rest[:end]), " ")})
			line += strings.Count(rest[:end], "\n")
			rest = rest[end:]
		}
		para = nil
	}
	inFence := false
	for i, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "```"):
			flush()
			inFence = !inFence
		case inFence || strings.HasPrefix(t, "$ ") || strings.HasPrefix(t, "<!--"):
			flush()
			out = append(out, unit{i + 1, t})
		case t == "":
			flush()
		default:
			if len(para) == 0 {
				start = i + 1
			}
			para = append(para, t)
		}
	}
	flush()
	return out
}

func TestSentences(t *testing.T) {
	got := fmt.Sprint(sentences("One, `underhood\ncheck 2`. Two: step 7's.\n\n```sh\nunderhood check 3  # x\n```\n<!-- output: underhood check 4 -->\n"))
	want := "[{1 One, `underhood check 2`.} {2 Two: step 7's.} {5 underhood check 3  # x} {7 <!-- output: underhood check 4 -->}]"
	if got != want {
		t.Errorf("sentences = %s\nwant        %s", got, want)
	}
}
