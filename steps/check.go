package steps

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/steps/check"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// CheckOptions say what 'underhood check N' looks at.
type CheckOptions struct {
	Rootfs  string // the attendee's own root filesystem (absolute); "" = the lab's
	Busybox string // the attendee's own BusyBox for step 1 (absolute); "" = the lab's
	JSON    bool
}

// stepCheck is what checking step N looks at, and what comes next: the
// underhood way, and the way by hand (%s is the root filesystem).
type stepCheck struct {
	run          func(check.Env) []check.Item
	next, byHand string
}

var stepChecks = map[int]stepCheck{
	1: {check.Busybox, "sudo underhood rootfs (step 2)",
		"build the root filesystem by hand (docs/02-rootfs.md), then: sudo underhood check 2 --rootfs ~/container"},
	2: {check.Layout, "sudo underhood chroot (step 3)",
		"sudo chroot %[1]s /bin/busybox sh (docs/03-chroot.md), then: sudo underhood check 3 --rootfs %[1]s"},
	3: {check.Chroot, "sudo underhood mount-proc (step 4)",
		"mount proc in it (docs/04-mount-proc.md), then: sudo underhood check 4 --rootfs %[1]s"},
	4: {check.Proc, "sudo underhood unshare (step 5)",
		"sudo unshare -f -p --mount-proc=%[1]s/proc chroot %[1]s /bin/busybox sh (docs/05-unshare.md)"},
	5: {check.PIDNamespace, "sudo underhood cgroup (step 6)",
		"make a memory cgroup by hand (docs/06-cgroup.md), then: sudo underhood check 6 --rootfs %[1]s"},
	6: {check.MemoryCgroup, "sudo underhood run (step 7)",
		"remove the cgroup when you are done, then put it all together (docs/07-full-run.md)"},
	7: {check.Leftovers, "look at a running container from the host: sudo underhood inspect (docs/08-inspect.md)",
		"look at a running container from the host: sudo underhood inspect (docs/08-inspect.md)"},
}

// CheckReport checks the state that step n should leave, as env sees it.
func CheckReport(n int, env check.Env) (check.Report, error) {
	sc, ok := stepChecks[n]
	s, registered := ByNumber(n)
	if !ok || !registered {
		return check.Report{}, ui.Usagef("check %d: not a step number; steps are %s (see 'underhood steps')", n, Numbers())
	}
	target := env.Rootfs
	switch n {
	case 1:
		target = env.Busybox
	case 6:
		target = "the memory cgroups in " + env.CgroupRoot
	case 7:
		target = "this machine, for what a container leaves behind"
	}
	next := sc.next
	if env.ByHand {
		next = sc.byHand
		if strings.Contains(next, "%") {
			next = fmt.Sprintf(sc.byHand, env.Rootfs)
		}
	}
	return check.NewReport(n, s.Title, target, sc.run(env), next), nil
}

// Check is 'underhood check N': it verifies on this machine what step n
// should leave, in underhood's work directory or in what the attendee made
// by hand, and exits 1 unless everything is there.
func Check(o *ui.IO, w state.Workdir, n int, opt CheckOptions) error {
	env := check.System(w)
	if opt.Rootfs != "" {
		env.Rootfs, env.ByHand = filepath.Clean(opt.Rootfs), true
	}
	if opt.Busybox != "" {
		env.Busybox, env.ByHand = filepath.Clean(opt.Busybox), true
	}
	r, err := CheckReport(n, env)
	if err != nil {
		return err
	}
	return r.Print(o, opt.JSON)
}
