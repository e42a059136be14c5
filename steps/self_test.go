package steps

import (
	"os"
	"strings"
	"testing"
)

// Steps 8 and 10 copy underhood into their container: a dynamically linked
// build (a plain go build) is refused with how to make a static one, and
// nothing about BusyBox.
func TestSelfInContainer(t *testing.T) {
	const dynamic = "/bin/ls"
	if _, err := os.Stat(dynamic); err != nil {
		t.Skipf("no %s to stand for a dynamic underhood", dynamic)
	}
	err := selfInContainer(dynamic)
	if err == nil {
		t.Fatal("a dynamic underhood was accepted")
	}
	msg := err.Error()
	for _, want := range []string{"underhood at /bin/ls is dynamically linked", "make build", "CGO_ENABLED=0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "BusyBox") {
		t.Errorf("%q gives BusyBox's remedy for underhood", msg)
	}
	self, err := os.Executable() // the test binary: static under CGO_ENABLED=0 only
	if err == nil && os.Getenv("CGO_ENABLED") == "0" {
		if err := selfInContainer(self); err != nil {
			t.Errorf("a static build refused: %v", err)
		}
	}
}
