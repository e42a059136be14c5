package steps

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "mount-proc", Title: "Mount /proc and see the host's processes", Part: Article, Kind: Container,
		Long:      "Mount proc in the root filesystem (in a private mount namespace), then chroot.\nInside, 'busybox ps -A' lists every process of the host.",
		Page:      "04-mount-proc.md",
		Code:      []string{"lab/ns/setup.go setup", "lab/mount/mount.go Mount"},
		Ephemeral: true, Done: readyToRun, Run: MountProc,
		Explain: Explanation{
			What: "Mounts a proc filesystem at rootfs/proc, then chroots into the root and starts a shell.",
			Why:  "ps reads /proc. Once proc is mounted, the chrooted shell sees every process of the host: a changed root alone does not hide processes.",
			Shell: []string{
				"sudo mount -t proc proc ~/container/proc",
				"sudo chroot ~/container /bin/busybox sh",
				"/ # busybox ps -A         # every host process",
				"/ # exit                  # back on the host",
				"sudo umount ~/container/proc",
			},
			Syscalls: []string{
				"clone(CLONE_NEWNS)                   a private copy of the mount table",
				"mount(\"\", \"/\", MS_REC|MS_PRIVATE)   nothing propagates back to the host",
				"mount(\"proc\", \"rootfs/proc\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC)",
				"chroot(\"rootfs\"), chdir(\"/\"), execve(\"/bin/busybox\", [\"busybox\", \"sh\"])",
				"mkdir(\"underhood/NAME\"), cgroup.procs   no memory limit, the default task limit: to find all its processes",
			},
			Differs: "The article mounts proc in the host's own mount table and has to remember to unmount it. underhood mounts it inside a private mount namespace: the host's mount table never changes, and the mount disappears by itself when the shell exits. The processes seen are the same, because the PID namespace is still the host's. underhood also puts the run in a cgroup of its own, with no memory limit (only the default task limit), so that it can find and end every process of the run afterwards, even one that left its session.",
			Observe: "busybox ps -A lists systemd, kernel threads and everything else running on the host. That is the problem the next step fixes.",
			NotIsolated: []string{
				"Processes: proc shows every process of the host, and root in the chroot can signal or trace any of them ({unshare} gives it a PID namespace).",
				"The host's kernel: proc's writable files (/proc/sys, /proc/sysrq-trigger) change the whole machine; nothing is masked or read-only ({privileges} makes them read-only).",
				"Root keeps every capability and can leave the chroot ({pivot-root}); network, hostname, IPC and users are the host's.",
				"Resources: no memory or CPU limit ({cgroup} and {limits}).",
			},
		},
		Check: StepCheck{Run: check.Proc, Looks: "proc mounted in it (while you explore) or unmounted again (when done); with proc, the chroot sees the host's processes",
			ByHand: "sudo unshare -f -p --mount-proc=%[1]s/proc chroot %[1]s /bin/busybox sh"},
		Tour: TourStop{About: [2]string{
			"ps reads /proc. With proc mounted in the new root, ps works again,",
			"and shows every process of the host: a changed root hides no process.",
		}, Cmd: "sudo underhood mount-proc -- /bin/busybox sh -c 'busybox ps -A | busybox wc -l'", Demo: (*tour).mountProc},
	})
}

// MountProcSpec is the container of the mount-proc step: a private mount
// namespace with proc mounted in the root, then chroot.
func MountProcSpec(root string) container.Spec {
	return container.Spec{Kind: "mount-proc", Rootfs: root,
		Clone: unix.CLONE_NEWNS, Flags: ns.Private | ns.MountProc | ns.Chroot}
}

// MountProc runs the mount-proc step.
func MountProc(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("mount-proc")
	root, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	o.Note("%s proc is mounted at %s, then chroot. The mount lives in a private mount namespace: the host's mount table does not change.", stepTag(o, s), filepath.Join(root, "proc"))
	try(o, opt, "busybox ps -A: every host process shows up, because the PID namespace is still the host's.")
	return start(o, w, opt, MountProcSpec(root), shell)
}
