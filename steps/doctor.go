package steps

import (
	"fmt"

	"github.com/underhood/underhood/lab/doctor"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// DoctorWords are the names doctor's rows give the workshop's steps and
// commands, from the registry; with a work directory other than the
// default, the commands carry --workdir (sudo drops $UNDERHOOD_HOME).
func DoctorWords(w state.Workdir) doctor.Words {
	wd := ""
	if w.Root != "" && w.Root != state.DefaultRoot {
		wd = " --workdir " + ui.QuoteArg(w.Root)
	}
	words := doctor.Words{
		Doctor:   "sudo underhood" + wd + " doctor",
		Download: "sudo underhood" + wd + " " + of("download").Name,
	}
	words.DownloadStep = of("download").Label()
	for _, s := range registry {
		if s.Kind == Container && words.RootSteps == "" {
			words.RootSteps = fmt.Sprintf("steps %d and up", s.N)
		}
		if s.Options&WithMemory != 0 && words.MemoryStep == "" {
			words.MemoryStep = s.Label()
		}
	}
	return words
}
