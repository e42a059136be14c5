package guide

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/underhood/underhood/lab/busybox"
)

// CheckFunc checks an underhood command line of the guide against the
// program's command tree, without running it. args are the words after
// "underhood" (see Args). mention says that the text only names the
// command ("see `underhood ps`"), rather than shows it being typed: there
// its name alone is enough.
type CheckFunc func(args []string, mention bool) error

var downloadRE = regexp.MustCompile(`https://busybox\.net/downloads/binaries/\S+/busybox`)

// Lint checks the commands a Markdown file shows without running them:
// underhood commands with check, download URLs against the pinned one. It
// returns what is wrong, one line each.
func Lint(path string, check CheckFunc) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, c := range guideCommands(string(b)) {
		args, err := Args(c.cmd)
		if err == nil {
			err = check(args, c.inline)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: %s: %v", path, c.line, c.cmd, err))
		}
	}
	for _, u := range downloadRE.FindAllString(string(b), -1) {
		if u != busybox.DefaultURL {
			bad = append(bad, fmt.Sprintf("%s: %s is not the pinned download %s", path, u, busybox.DefaultURL))
		}
	}
	return bad, nil
}

// Args are the arguments an underhood command line of the guide passes to
// underhood: its words as the shell splits them, up to a comment, ;, &, |
// or a redirection, with ~ expanded as the shell would, placeholders
// filled in as the reader would, and sudo and underhood dropped.
func Args(line string) ([]string, error) {
	words, err := shellWords(line)
	if err != nil {
		return nil, err
	}
	for i, w := range words { // as the shell expands it, and the reader fills it in
		if w == "~" || strings.HasPrefix(w, "~/") {
			words[i] = shownHome + w[1:]
		}
		if v, ok := placeholders[w]; ok {
			words[i] = v
		}
	}
	if len(words) > 0 && words[0] == "sudo" {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "underhood" {
		return nil, fmt.Errorf("not an underhood command")
	}
	return words[1:], nil
}

// shellWords splits a command line as a shell would, enough for the guide:
// quotes, and the end of the command at a comment, ;, &, | or a redirection.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	have := false
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, have = c, true
		case c == ' ' || c == '\t':
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case strings.ContainsRune("#;&|<>", c) && !have:
			return appendWord(words, &cur, have), nil
		case strings.ContainsRune("<>", c) && regexp.MustCompile(`^\d+$`).MatchString(cur.String()):
			return words, nil // 2>/dev/null: the 2 is not a word
		case strings.ContainsRune(";&|<>", c):
			return appendWord(words, &cur, have), nil
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	return appendWord(words, &cur, have), nil
}

func appendWord(words []string, cur *strings.Builder, have bool) []string {
	if have {
		words = append(words, cur.String())
	}
	return words
}

// guideCommands finds every underhood command a page shows: in fenced code
// blocks ("$ sudo underhood …" or a line that starts with it) and in inline
// code spans, with the line each is on.
func guideCommands(text string) []guideCommand {
	var out []guideCommand
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	inFence, n := false, 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			t := strings.TrimSpace(l)
			if p := promptEnd(t); p >= 0 && (strings.HasPrefix(t, "$ ") || strings.HasPrefix(t, "# ")) {
				t = t[p:]
			} else if i := strings.Index(t, " ("); i > 0 {
				// Output: a hint wrapped onto a line of its own, followed by
				// prose, "sudo underhood rootfs (step 2)".
				t = t[:i]
			}
			if isUnderhood(t) {
				out = append(out, guideCommand{n, t, false})
			}
			continue
		}
		for _, m := range inlineCodeRE.FindAllStringSubmatch(l, -1) {
			if isUnderhood(m[1]) {
				out = append(out, guideCommand{n, m[1], true})
			}
		}
	}
	return out
}

type guideCommand struct {
	line   int
	cmd    string
	inline bool // in a code span of the text, not a code block
}

var inlineCodeRE = regexp.MustCompile("`([^`]+)`")

func isUnderhood(s string) bool {
	return strings.HasPrefix(s, "underhood ") || strings.HasPrefix(s, "sudo underhood ") || s == "underhood" || s == "sudo underhood"
}

// placeholders stand for what the reader fills in: check N, --pid PID.
var placeholders = map[string]string{"N": "1", "PID": "1", "NAME": "box1", "DIR": "/tmp", "FILE": "/tmp/file", "CMD": "true", "INTERVAL": "1s"}
