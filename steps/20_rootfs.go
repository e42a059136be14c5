package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "rootfs", Title: "Prepare the root filesystem", Part: Article, Kind: Setup,
		Page:    "02-rootfs.md",
		Code:    []string{"lab/rootfs/rootfs.go Prepare", "lab/rootfs/rootfs.go Safe"},
		Explain: explainRootfs, Done: rootfsDone,
		Check: StepCheck{Run: check.Layout, Looks: "the root filesystem: bin dev etc proc sys, and bin/busybox",
			ByHand: "sudo chroot %[1]s /bin/busybox sh"},
		Tour: TourStop{About: [2]string{
			"A container's filesystem is a plain directory: bin, dev, etc, proc and sys,",
			"with a copy of BusyBox in bin. From the next step on it is / for the shell.",
		}, Cmd: "sudo underhood rootfs", Demo: (*tour).rootfs},
	})
}

var explainRootfs = Explanation{
	What: "Creates the skeleton of a Linux root directory, bin, dev, etc, proc and sys, and copies BusyBox into bin. " +
		"With --links it also adds one symlink per BusyBox applet, so that ls works as well as busybox ls.",
	Why: "This directory becomes / for the container from the next step on. Nothing outside it exists for the container, " +
		"so it must hold its own programs, and the empty proc and sys are where the kernel's views of processes and devices get mounted later.",
	Shell: []string{
		"mkdir -p ~/container && cd ~/container",
		"mkdir -p bin dev etc proc sys",
		"cp ~/Downloads/busybox bin",
		"# what --links adds, a link per BusyBox command:",
		"for a in $(bin/busybox --list); do [ $a = busybox ] || ln -s busybox bin/$a; done",
	},
	Syscalls: []string{
		"mkdir(2) <workdir>/rootfs and bin dev etc proc sys, then fchmod(0755)",
		"openat(O_CREAT|O_EXCL) bin/.busybox.*.tmp",
		"ioctl(FICLONE)                 share the original's blocks where the filesystem can (btrfs, XFS)",
		"read(2) + write(2)             or a plain copy (ext4, tmpfs)",
		"fchmod(0755) + fsync(2) + renameat(2) → bin/busybox",
		"symlinkat(2) bin/<applet> -> busybox   with --links, one per name from busybox --list",
	},
	Differs: "The article builds the tree in your home directory. underhood keeps it in its work directory and builds it so that a container cannot turn it against the host: " +
		"it refuses the host's / and any path through a symlink, never follows a link inside the tree, and copies BusyBox rather than hard-linking it, " +
		"since a root payload that overwrote a hard-linked bin/busybox would overwrite the original as well. Running it again changes nothing that is already right.",
	Observe: "ls -l /var/lib/underhood/rootfs /var/lib/underhood/rootfs/bin (in the default work directory): the whole container filesystem is five directories and one binary, plus links with --links. " +
		"proc and sys are empty, as nothing is mounted on them yet.",
}

// RootfsOptions are what a user can set on step 2.
type RootfsOptions struct {
	Links bool // a symlink per applet in bin/
}

// rootfsDownload is how step 2 gets BusyBox when step 1 was skipped; tests
// point it at a local server.
var rootfsDownload = DownloadOptions{}

// Rootfs is step 2: it prepares the shared root filesystem at w.Rootfs(),
// downloading BusyBox first if step 1 has not been run.
func Rootfs(ctx context.Context, o *ui.IO, w state.Workdir, opt RootfsOptions) error {
	dir := w.Rootfs()
	if err := rootfs.Safe(dir); err != nil {
		return err
	}
	if _, err := os.Stat(w.Busybox()); errors.Is(err, fs.ErrNotExist) {
		o.Note("No BusyBox at %s yet: running %s (%s) first.", w.Busybox(), of("download").Label(), of("download").Command())
		if err := downloadBusybox(ctx, o, w, rootfsDownload, false); err != nil {
			return err
		}
	}
	if err := busybox.CheckStatic(w.Busybox()); err != nil {
		return fmt.Errorf("%w; replace it with 'sudo %s' (%s)", err, of("download").Command(), of("download").Label())
	}
	// The root gets the bytes step 1 verified, and --links lists the
	// applets of that same copy.
	verified, err := verifiedBusybox(w)
	if err != nil {
		return err
	}
	if err := rootfs.Prepare(dir, verified, opt.Links); err != nil {
		return err
	}

	o.Note("%s root filesystem ready at %s:", stepTag(o, of("rootfs")), dir)
	o.Table([]string{"PATH", "WHAT"}, rootfsRows(dir))
	if !opt.Links {
		o.Note("Inside, run tools as busybox ls, busybox ps… (the shell of some BusyBox builds also takes plain ls); add --links for ls, ps… as links on every build.")
	}
	o.Next(of("rootfs").NextHint())
	return nil
}

func rootfsRows(dir string) [][]string {
	bin := "programs: only busybox"
	if n := appletLinks(dir); n > 0 {
		bin = fmt.Sprintf("programs: busybox and %d applet links to it (ls -> busybox, …)", n)
	}
	return [][]string{
		{dir + "/", "becomes / for the container"},
		{"  bin/", bin},
		{"  bin/busybox", busyboxDetail(rootfs.Busybox(dir)) + ", a copy of its own"},
		{"  dev/", "empty: device files"},
		{"  etc/", "empty: configuration"},
		{"  proc/", "empty: proc gets mounted here (" + of("mount-proc").Label() + ")"},
		{"  sys/", "empty: where sysfs can be mounted"},
	}
}

// appletLinks counts the bin/<name> -> busybox symlinks.
func appletLinks(dir string) int {
	ents, err := os.ReadDir(filepath.Join(dir, "bin"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if t, err := os.Readlink(filepath.Join(dir, "bin", e.Name())); err == nil && t == "busybox" {
			n++
		}
	}
	return n
}

// rootfsDone: step 2 is done when a container can start from the shared
// root filesystem.
func rootfsDone(w state.Workdir) (bool, string) {
	dir := w.Rootfs()
	if _, err := os.Lstat(dir); err != nil {
		return false, "missing"
	}
	if err := rootfs.Check(dir); err != nil {
		var nr *rootfs.NotReadyError
		if errors.As(err, &nr) {
			return false, nr.Problem
		}
		return false, err.Error()
	}
	d := "bin dev etc proc sys, bin/busybox"
	if n := appletLinks(dir); n > 0 {
		d += fmt.Sprintf(", %d applet links", n)
	}
	return true, d
}
