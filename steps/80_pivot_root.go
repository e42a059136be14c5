package steps

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/escape"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "pivot-root", Title: "pivot_root: why chroot is not a jail", Part: Beyond, Kind: Container,
		Long: "First the attack: the classic chroot escape, run in the full container of the\n" +
			"article, reads a host file. Then the fix: the same container with pivot_root\n" +
			"instead of chroot, where the same escape finds only the container's own root.\n" +
			"With -- CMD, runs CMD in the pivot_root container (underhood is /bin/underhood\n" +
			"there: try /bin/underhood escape /etc/hostname).",
		Options:   WithMemory | WithPauses,
		Page:      "09-pivot-root.md",
		Code:      []string{"lab/escape/escape.go Try", "lab/pivot/pivot.go Root", "lab/pivot/diagnose.go Diagnose", "lab/ns/setup.go setup"},
		Ephemeral: true, Done: readyToRun, Run: PivotRoot,
		Explain: Explanation{
			What: "Runs the classic chroot escape twice: in the article's container (chroot), where it reads a file of the host's, and in the same container with pivot_root, where it cannot.",
			Why: "chroot changes what one process calls /, nothing more: a root process can chroot again into a subdirectory, which leaves its working directory outside its root, and from there cd .. walks up to the host's real root. " +
				"pivot_root changes the root of the whole mount namespace; once the old root is unmounted, there is no path and no walk that leads back to the host's files.",
			Shell: []string{
				"# the escape takes a program, root in the chroot: mkdir x; chroot x; cd .. up to /; chroot . (a shell's chroot starts a new shell; underhood escape is one)",
				"cd ~/container          # the fix: pivot_root, in a new mount namespace",
				"sudo unshare -m -p -f --mount-proc=$PWD/proc sh -ec '",
				"  mount --make-rprivate /; mount --rbind . .; cd \"$PWD\"",
				"  mkdir -p .oldroot; pivot_root . .oldroot; cd /",
				"  exec /bin/busybox sh -c \"busybox umount -l /.oldroot &&",
				"    busybox rmdir /.oldroot && exec busybox sh\"'",
			},
			Syscalls: []string{
				"clone(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS)",
				"mount(\"\", \"/\", MS_REC|MS_PRIVATE)      pivot_root refuses shared mounts",
				"mount(root, root, MS_BIND|MS_REC)          the new root must be a mount point",
				"mkdir(root/.oldroot), pivot_root(root, root/.oldroot), chdir(\"/\")",
				"umount2(\"/.oldroot\", MNT_DETACH), rmdir(\"/.oldroot\")",
				"the escape: mkdir, chroot(dir), chdir(\"..\") ×64, chroot(\".\"), open(FILE)",
			},
			Differs: "pivot_root fails with one EINVAL for several reasons: a shared / (make it private), a new root that is not a mount point (bind it onto itself), a put_old outside the new root, " +
				"or a root that is the initial ramfs (runc's --no-pivot moves the mount and chroots instead). When it fails, underhood reads mountinfo and says which one applies.",
			Observe: "The first run prints the host's own /etc/hostname from inside the container: chroot held nothing. The second prints 'Held': pivot_root did. " +
				"What this still does not isolate: root in the container keeps every capability (it could mount the host's disk again), the network, IPC and users; the privileges step closes the first.",
		},
		Check: StepCheck{Run: check.PivotRoot, Looks: "a shell pivoted into the root filesystem by hand: its own mount namespace, pivot_root not chroot, the old root unmounted",
			ByHand: "exit the pivoted shell, then add task and CPU limits to a cgroup as the page shows"},
		Tour: TourStop{About: [2]string{
			"chroot is no jail: a root process in it can walk out to the host's files.",
			"pivot_root swaps the namespace's root and unmounts the old one: nothing to climb back to.",
		}, Cmd: "sudo underhood pivot-root", Demo: (*tour).pivotRoot},
	})
}

// PivotRootSpec is the full container with pivot_root in place of chroot,
// and underhood copied in as /bin/underhood for the escape.
func PivotRootSpec(name, busyboxPath, self string, limit int64, host cgroup.Host, parent string) container.Spec {
	s := RunSpec(name, busyboxPath, limit, host, parent)
	s.Kind = "pivot-root"
	s.Flags = s.Flags&^ns.Chroot | ns.PivotRoot
	s.CopyIn = []container.CopyIn{{Dest: "bin/underhood", Src: self}}
	return s
}

// escapeTarget is the host file the escape reads: one every machine has,
// and the container's root has not.
func escapeTarget() string {
	for _, f := range []string{"/etc/hostname", "/etc/os-release", "/etc/passwd"} {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return "/etc/hostname"
}

// PivotRoot runs the pivot-root step.
func PivotRoot(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("pivot-root")
	host, self, err := selfSetup(s.Name, w, opt)
	if err != nil {
		return err
	}
	limit := limitOf(opt)
	if len(opt.Argv) > 0 {
		spec := PivotRootSpec(container.RandomName("pivot"), w.Busybox(), self, limit, host, opt.CgroupParent)
		return start(o, w, opt, spec, nil)
	}
	target := escapeTarget()
	argv := []string{"/bin/underhood", "--no-color", "escape", target}

	o.Note("%s first the article's container (chroot), with underhood inside it as /bin/underhood, tries the escape and reads the host's %s:", stepTag(o, s), target)
	chroot := RunSpec(container.RandomName("chroot"), w.Busybox(), limit, host, opt.CgroupParent)
	chroot.Kind = "pivot-root"
	chroot.CopyIn = []container.CopyIn{{Dest: "bin/underhood", Src: self}}
	chroot.Argv = argv
	first, err := launch(o, w, opt, &chroot)
	if err != nil || first.Interrupted != nil {
		return stopped(o, err, first)
	}
	if err := opt.more("the same escape under pivot_root"); err != nil {
		return err
	}
	o.Note("")
	o.Note("%s then the same container with pivot_root instead of chroot, and the same escape:", stepTag(o, s))
	pivoted := PivotRootSpec(container.RandomName("pivot"), w.Busybox(), self, limit, host, opt.CgroupParent)
	pivoted.Argv = argv
	second, err := launch(o, w, opt, &pivoted)
	if err != nil || second.Interrupted != nil {
		return stopped(o, err, second)
	}
	escaped, held := first.ExitCode == escape.Escaped.ExitCode(), second.ExitCode == escape.Held.ExitCode()
	o.Note("")
	switch {
	case escaped && held:
		o.Note("%s under chroot the escape read the host's %s; under pivot_root it found only the container's own root. Both containers are removed.", o.Bold("That is the difference:"), target)
		_ = w.RecordProgress(s.Name, time.Now())
		o.Next(s.NextHint())
		return nil
	case !escaped:
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("the escape did not work under chroot (exit status %d): is this a container already, without CAP_SYS_CHROOT? see sudo underhood doctor", first.ExitCode)}
	}
	return &ui.ExitError{Code: 1, Err: fmt.Errorf("the escape was not held under pivot_root (exit status %d)", second.ExitCode)}
}

// stopped is how a two-run step ends when a run failed or was interrupted.
func stopped(o *ui.IO, err error, res *container.Result) error {
	if err != nil {
		return err
	}
	if res != nil && res.Interrupted != nil {
		report(o, container.Spec{}, res)
		return &ui.ExitError{Code: res.Status()}
	}
	return errors.New("the run did not start")
}

// usableBusybox: a container step needs the lab's BusyBox, a static one.
func usableBusybox(w state.Workdir) error {
	if err := busybox.CheckStatic(w.Busybox()); err != nil {
		dl := of("download")
		return ui.Usagef("no usable BusyBox at %s (%v): run 'sudo %s' (%s) first", w.Busybox(), err, dl.Command(), dl.Label())
	}
	return nil
}

// selfSetup is what the steps that copy underhood into their container
// (8, 10, 12) need before they start: root, the lab's BusyBox, the memory
// host, and underhood itself, static.
func selfSetup(step string, w state.Workdir, opt ContainerOptions) (cgroup.Host, string, error) {
	if err := needRoot(step); err != nil {
		return cgroup.Host{}, "", err
	}
	if err := usableBusybox(w); err != nil {
		return cgroup.Host{}, "", err
	}
	host, err := memoryHost(opt)
	if err != nil {
		return host, "", err
	}
	self, err := selfPath(opt)
	if err != nil {
		return host, "", err
	}
	return host, self, selfInContainer(self)
}

// selfInContainer: this step copies underhood into its container, whose
// root has BusyBox and nothing else, so underhood must be a static build.
func selfInContainer(self string) error {
	err := busybox.CheckStatic(self)
	var dyn *busybox.DynamicError
	if errors.As(err, &dyn) {
		return fmt.Errorf("underhood at %s is dynamically linked (needs %s; a plain 'go build' links it so): this step runs it inside the container, which has no loader. "+
			"Build it static and run that one: make build (or CGO_ENABLED=0 go build ./cmd/underhood), then sudo ./underhood", self, dyn.Needs)
	}
	if err != nil {
		return fmt.Errorf("underhood at %s cannot run inside the container: %v", self, err)
	}
	return nil
}

// selfPath is the underhood binary to copy into a container.
func selfPath(opt ContainerOptions) (string, error) {
	if opt.Self != "" {
		return opt.Self, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find underhood's own binary to copy in: %w", err)
	}
	return p, nil
}
