package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/steps/guide"
)

const docsDir = "../../docs"

// The command reference in docs/cli is what cobra/doc makes of the commands
// today.
func TestDocsCLIReferenceIsCurrent(t *testing.T) {
	stale, err := guide.Reference(filepath.Join(docsDir, "cli"), true, genCLI)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("docs/cli is stale; run 'make docs' (or: go run ./cmd/underhood-docs -cli docs/cli):\n  %s", strings.Join(stale, "\n  "))
	}
}

// Every underhood command the guide shows, run or not, names a command
// that exists, with flags and arguments it takes. (That the guide's
// commands are found at all is lab/guide's TestGuideCommandsFound.)
func TestDocsCommandsParse(t *testing.T) {
	pages, err := guide.Pages(docsDir)
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in %s: %v", docsDir, err)
	}
	for _, p := range append(pages, "../../README.md") {
		bad, err := guide.Lint(p, lintArgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Error(b)
		}
	}
}

// lintLine is the lint of a command line shown in a code block.
func lintLine(line string) error {
	args, err := guide.Args(line)
	if err != nil {
		return err
	}
	return lintArgs(args, false)
}

// The lint itself: what it accepts and what it refuses.
func TestDocsLintCommand(t *testing.T) {
	for _, ok := range []string{
		"sudo underhood unshare -- busybox ps -A",
		"underhood check 3 --rootfs ~/container",
		"sudo underhood run --name box1 -- /bin/busybox sh -c 'busybox hostname; busybox ps -A'",
		"sudo underhood step 5 --explain",
		"sudo underhood inspect box1 --watch=500ms",
		"sudo underhood tour --no-pause --from 5 2>/dev/null | less",
		"underhood --workdir /tmp/lab steps",
	} {
		if err := lintLine(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"sudo underhood unshar",
		"sudo underhood run --nmae box1",
		"underhood check 99",
		"underhood check",
		"sudo underhood tour --from",
	} {
		if err := lintLine(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
