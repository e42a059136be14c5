// Package lab_test holds the dependency check of lab/: the primitives know
// nothing of the workshop (steps), of the command line (cmd, cobra), or of
// the docs generator.
package lab_test

import (
	"os/exec"
	"strings"
	"testing"
)

func TestLabDependsOnNoWorkshopOrCLI(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("requires the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/underhood/underhood/steps",
		"github.com/underhood/underhood/cmd",
		"github.com/spf13/cobra",
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "github.com/underhood/underhood/lab/") {
			continue
		}
		checked++
		for _, dep := range f[1:] {
			for _, bad := range forbidden {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s imports %s: lab/ must not know the workshop or the CLI", f[0], dep)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d lab packages; go list found too few", checked)
	}
}
