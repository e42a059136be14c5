package steps

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/overlay"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// LayersWrite is the first run's payload: it writes a file, then deletes
// the only binary of the root (the shell runs on from memory).
const LayersWrite = `echo "written in the container" > /hello.txt; echo "/:" $(busybox ls /); busybox rm /bin/busybox; echo "deleted /bin/busybox"`

// LayersRead is the second run's payload, on the same lower layer.
const LayersRead = `echo "/bin:" $(busybox ls /bin); busybox cat /hello.txt 2>&1`

func init() {
	register(&Step{Name: "layers", Title: "Layers: the root as an overlay", Part: Beyond, Kind: Container,
		Long: "The full container with an overlay as its root: the prepared root filesystem\n" +
			"is the read-only lower layer, shared by every run; each run writes into an\n" +
			"upper directory of its own. The first run writes a file and deletes\n" +
			"/bin/busybox; the host lists the upper directory (a whiteout for the\n" +
			"deletion); a second run finds the root as it was. With -- CMD, runs CMD on\n" +
			"an overlay and lists what it changed.",
		Options:   WithMemory | WithPauses,
		Page:      "14-layers.md",
		Code:      []string{"lab/overlay/overlay.go Mount", "lab/overlay/changes.go Changes", "lab/container/root.go mountOverlay", "lab/overlay/fingerprint.go Fingerprint"},
		Ephemeral: true, Done: readyToRun, Run: Layers,
		Explain: Explanation{
			What: "Runs the full container on an overlay: the lab's root filesystem as the lower layer, read-only, and an upper and a work directory in the run's directory. What the payload writes or deletes lands in the upper directory only; the lower stays as it was, and the next run starts from it again.",
			Why: "Step 7 copies the root for every run. With many containers, or a big root, that costs disk and time. overlayfs merges directories instead: reads fall through to the lower layer, a write copies the file up first, and a deletion leaves a whiteout (a character device 0/0) in the upper directory that hides the lower name. " +
				"Image layers are the same idea: each is a set of changes on top of the one below.",
			Shell: []string{
				"mkdir -p ~/box/upper ~/box/work ~/box/merged",
				"o=lowerdir=$HOME/container,upperdir=$HOME/box/upper,workdir=$HOME/box/work",
				"sudo mount -t overlay overlay -o $o ~/box/merged",
				"cd ~/box/merged; sudo unshare -fp --mount-proc=proc chroot . /bin/busybox sh",
				"#   inside: echo hi > /hello.txt; busybox rm /bin/busybox; exit",
				"ls -l ~/box/upper ~/box/upper/bin   # c--------- 0, 0 busybox: a whiteout",
				"cd; sudo umount ~/box/merged && sudo rm -r ~/box",
			},
			Syscalls: []string{
				"mkdir(runs/<name>/upper, runs/<name>/work, runs/<name>/rootfs)",
				"mount(\"overlay\", rootfs, \"overlay\", 0, \"lowerdir=…,upperdir=…,workdir=…\")",
				"clone(CLONE_NEWPID|CLONE_NEWNS|…): the namespace gets a copy of the overlay",
				"… as in step 7: proc, devices, chroot(runs/<name>/rootfs), execve(payload)",
				"lstat(upper/…): S_IFCHR 0/0 = whiteout, trusted.overlay.opaque = opaque",
				"umount2(runs/<name>/rootfs), rm -r runs/<name>",
			},
			Differs: "The overlay is mounted in the host's mount table, before the container's namespace is made, as containerd does for runc: a run killed with -9 leaves it there until 'underhood cleanup'. " +
				"Where overlayfs is missing or refuses the filesystem (a lower on an overlay already, an upper on NFS or vfat), the run copies the root as step 7 does and says so. docker and podman stack one lower per image layer (lowerdir=a:b:c); here there is one.",
			Observe: "The host's list of the upper directory shows /hello.txt and /bin/busybox as a whiteout, plus the empty files underhood makes in /dev for its device mounts. The second run still has /bin/busybox and no /hello.txt, and the lower's fingerprint is the same before and after. " +
				"What this does not isolate: the lower is shared read-only, but the upper is on the host's disk with no quota; a payload can fill it.",
		},
		Check: StepCheck{Run: check.Overlay, Looks: "overlayfs in the kernel, and an overlay mounted by hand with the root filesystem as its lower layer: its upper directory and what is in it",
			Target: func(e check.Env) string { return "overlays on " + e.Rootfs },
			ByHand: "unmount your overlay (sudo umount ~/box/merged && sudo rm -r ~/box, as docs/14-layers.md does), then pack the root as an image"},
		Tour: TourStop{About: [2]string{
			"An overlay is the root without a copy: the root filesystem read-only below, one upper dir per run.",
			"A run writes a file and deletes /bin/busybox; the host sees both in upper; the next run sees neither.",
		}, Cmd: "sudo underhood layers", Demo: (*tour).layers},
	})
}

// LayersSpec is the full container with an overlay on lower as its root.
func LayersSpec(name, lower, busyboxPath string, limit int64, host cgroup.Host, parent string) container.Spec {
	s := RunSpec(name, busyboxPath, limit, host, parent)
	s.Kind, s.Rootfs, s.Overlay = "layers", lower, true
	return s
}

// Layers runs the layers step.
func Layers(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("layers")
	lower, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	if err := usableBusybox(w); err != nil {
		return err
	}
	host, err := memoryHost(opt)
	if err != nil {
		return err
	}
	limit := limitOf(opt)
	before, err := overlay.Fingerprint(lower)
	if err != nil {
		return err
	}
	if len(opt.Argv) > 0 {
		spec := LayersSpec(container.RandomName("layers"), lower, w.Busybox(), limit, host, opt.CgroupParent)
		spec.Argv = opt.Argv
		r, err := launch(o, w, opt, &spec)
		if err != nil || r.Interrupted != nil {
			return stopped(o, err, r)
		}
		showLayer(o, r)
		if r.ExitCode != 0 {
			return &ui.ExitError{Code: r.ExitCode}
		}
		return nil
	}

	o.Note("%s lower layer %s (read-only, fingerprint %s); the first run writes /hello.txt and deletes /bin/busybox:", stepTag(o, s), lower, short(before))
	first := LayersSpec(container.RandomName("layers"), lower, w.Busybox(), limit, host, opt.CgroupParent)
	first.Argv = []string{"/bin/busybox", "sh", "-c", LayersWrite}
	r1, err := launch(o, w, opt, &first)
	if err != nil || r1.Interrupted != nil {
		return stopped(o, err, r1)
	}
	if !showLayer(o, r1) {
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("no overlay, so nothing to show: %w", r1.OverlayFallback)}
	}
	if err := opt.more("a second run on the same lower layer"); err != nil {
		return err
	}
	o.Note("")
	o.Note("%s a second run, on a new overlay over the same lower layer:", stepTag(o, s))
	second := LayersSpec(container.RandomName("layers"), lower, w.Busybox(), limit, host, opt.CgroupParent)
	second.Argv = []string{"/bin/busybox", "sh", "-c", LayersRead}
	var out bytes.Buffer
	r2, err := launchTee(o, w, opt, &second, &out)
	if err != nil || r2.Interrupted != nil {
		return stopped(o, err, r2)
	}
	after, err := overlay.Fingerprint(lower)
	if err != nil {
		return err
	}
	left := leftOverlays(w)
	o.Note("")
	switch {
	case before != after:
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("the lower layer %s changed: fingerprint %s before, %s after", lower, before, after)}
	case !strings.Contains(out.String(), "/bin: busybox") || !strings.Contains(out.String(), "No such file"):
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("the second run did not find the root as it was: see its output above")}
	case len(left) > 0:
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("an overlay is still mounted at %s: run 'sudo underhood cleanup --all'", left[0])}
	}
	o.Note("%s the second run had /bin/busybox and no /hello.txt; the lower layer's fingerprint is %s before and after; no overlay is mounted, and both upper directories are gone.", o.Bold("That is the difference:"), short(after))
	_ = w.RecordProgress(s.Name, time.Now())
	o.Next(s.NextHint())
	return nil
}

// showLayer says what the run changed, as the host saw its upper
// directory, or why it had no overlay. It reports whether there was one.
func showLayer(o *ui.IO, r *container.Result) bool {
	if r.Overlay == nil {
		o.Warnf("no overlay: %v. This run copied the root instead, as step 7 does.", r.OverlayFallback)
		return false
	}
	o.Note("The upper directory %s, from the host, before it was removed:", r.Overlay.Upper)
	if len(r.Changes) == 0 {
		o.Note("  (empty: the payload changed nothing)")
	}
	for _, c := range r.Changes {
		what := string(c.What)
		switch c.What {
		case overlay.Deleted:
			what = "deleted: a whiteout, character device 0/0"
		case overlay.Opaque:
			what = "opaque: a directory that hides the lower one"
		}
		o.Note("  %-18s %s", c.Path, what)
	}
	return true
}

// leftOverlays lists overlays still mounted below the lab's runs.
func leftOverlays(w state.Workdir) []string {
	infos, err := mount.Read("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range mount.Under(infos, w.Runs()) {
		if m.FSType == "overlay" {
			out = append(out, m.Mountpoint)
		}
	}
	return out
}

// short is a digest cut to sha256: and 12 hex digits, for a line of notes.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func (t *tour) layers() (string, bool, error) {
	sub, _, errs := t.sub(nil)
	code, err := payloadStatus(Layers(sub, t.w, t.options()))
	var oe *overlay.Error
	if errors.As(err, &oe) {
		// A kernel without overlayfs: say so, and go on with the tour.
		return fmt.Sprintf("This kernel cannot mount an overlay here (%s): the step is left out on this machine; docs/14-layers.md shows it.", oe.Kind), true, nil
	}
	if err != nil {
		return "", false, err
	}
	if code != 0 || !strings.Contains(errs.String(), "whiteout") {
		return fmt.Sprintf("the overlay did not show as it should (exit status %d)", code), false, nil
	}
	return "Writes and deletions went to the run's upper directory; the lower layer was never touched.", true, nil
}
