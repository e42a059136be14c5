package steps

import (
	"testing"

	"github.com/underhood/underhood/lab/doctor"
	"github.com/underhood/underhood/lab/state"
)

// doctor's rows name the steps by the registry's numbers, and its commands
// reach the same work directory.
func TestDoctorWords(t *testing.T) {
	want := doctor.Words{RootSteps: "steps 3 and up", MemoryStep: "step 6", DownloadStep: "step 1",
		Doctor: "sudo underhood doctor", Download: "sudo underhood download"}
	if got := DoctorWords(state.Workdir{Root: state.DefaultRoot}); got != want {
		t.Errorf("default work directory:\n%+v\nwant\n%+v", got, want)
	}
	want.Doctor, want.Download = "sudo underhood --workdir '/tmp/my lab' doctor", "sudo underhood --workdir '/tmp/my lab' download"
	if got := DoctorWords(state.Workdir{Root: "/tmp/my lab"}); got != want {
		t.Errorf("--workdir:\n%+v\nwant\n%+v", got, want)
	}
}
