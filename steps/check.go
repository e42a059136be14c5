package steps

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// CheckOptions say what 'underhood check N' looks at.
type CheckOptions struct {
	Rootfs  string // the attendee's own root filesystem (absolute); "" = the lab's
	Busybox string // the attendee's own BusyBox for step 1 (absolute); "" = the lab's
	JSON    bool
}

// CheckReport checks the state that step n should leave, as env sees it.
func CheckReport(n int, env check.Env) (check.Report, error) {
	s, ok := ByNumber(n)
	if !ok || s.Check.Run == nil {
		return check.Report{}, ui.Usagef("check %d: not a step number; steps are %s (see 'underhood steps')", n, Numbers())
	}
	target := env.Rootfs
	if s.Check.Target != nil {
		target = s.Check.Target(env)
	}
	retry := fmt.Sprintf("sudo underhood check %d", n)
	if env.RootfsGiven {
		retry += " --rootfs " + env.Rootfs
	}
	if env.BusyboxGiven {
		retry += " --busybox " + env.Busybox
	}
	return check.NewReport(n, s.Title, target, s.Check.Run(env), checkNext(s, env), retry), nil
}

// checkNext is what to do once step s is done: the next step's command,
// or, by hand, the step's own next move with the next page and check.
func checkNext(s *Step, env check.Env) string {
	next := s.Next()
	if next == nil {
		return AfterLast
	}
	if !env.ByHand || s.Check.ByHand == "" {
		return s.NextHint()
	}
	root := env.Rootfs
	if !env.RootfsGiven {
		root = "~/container"
	}
	what := s.Check.ByHand
	if strings.Contains(what, "%") {
		what = fmt.Sprintf(what, root)
	}
	if next.Check.Machine {
		return fmt.Sprintf("%s (%s), then: sudo underhood check %d", what, next.Doc(), next.N)
	}
	return fmt.Sprintf("%s (%s), then: sudo underhood check %d --rootfs %s", what, next.Doc(), next.N, root)
}

// Check is 'underhood check N': it verifies on this machine what step n
// should leave, in underhood's work directory or in what the attendee made
// by hand, and exits 1 unless everything is there.
func Check(o *ui.IO, w state.Workdir, n int, opt CheckOptions) error {
	env := check.System(w)
	if opt.Rootfs != "" {
		env.Rootfs, env.ByHand, env.RootfsGiven = filepath.Clean(opt.Rootfs), true, true
		// By hand, the image of ~/container is ~/image.
		env.Image = filepath.Join(filepath.Dir(env.Rootfs), "image")
	}
	if opt.Busybox != "" {
		env.Busybox, env.ByHand, env.BusyboxGiven = filepath.Clean(opt.Busybox), true, true
	}
	r, err := CheckReport(n, env)
	if err != nil {
		return err
	}
	return r.Print(o, opt.JSON)
}
