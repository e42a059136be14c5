package steps

import (
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "chroot", Title: "Change the root directory", Part: Article, Kind: Container,
		Long:      "Start a BusyBox shell (or CMD) chrooted into the lab's root filesystem.\nInside, 'busybox ls /proc' and 'busybox ps -A' show nothing.",
		Page:      "03-chroot.md",
		Code:      []string{"lab/ns/setup.go setup", "lab/ns/ns.go Command", "lab/container/container.go Run"},
		Ephemeral: true, Done: readyToRun, Run: Chroot,
		Explain: Explanation{
			What: "Starts a BusyBox shell whose root directory is the lab's root filesystem. The shell and everything it starts see only the files below that directory.",
			Why:  "Changing the root is the filesystem part of a container: the process gets a tree of its own and cannot reach the host's files by path. It isolates nothing else.",
			Shell: []string{
				"cd ~/container",
				"sudo chroot . /bin/busybox sh",
				"/ # busybox ls /proc      # empty",
				"/ # busybox ps -A         # only its header: no process",
			},
			Syscalls: []string{
				"clone(2) + execve(underhood-init)    a small init program beside underhood",
				"chroot(\"<workdir>/rootfs\"), chdir(\"/\")",
				"execve(\"/bin/busybox\", [\"busybox\", \"sh\"])",
				"mkdir(\"underhood/NAME\"), cgroup.procs   no memory limit, the default task limit: to find all its processes",
			},
			Observe: "busybox ls /proc and busybox ps -A show nothing: no proc filesystem is mounted in the new root, so there is no way to see processes.",
			NotIsolated: []string{
				"Processes: the shell is in the host's PID namespace; once proc is mounted it sees, and as root can signal, every process of the host ({mount-proc}).",
				"Root: the shell is the host's root with every capability; it can mount, make device files, load kernel modules, and leave the chroot by the classic escape ({pivot-root} shows it, and pivot_root closing it).",
				"Network, hostname, IPC and users are the host's: no namespace of its own for any of them.",
				"Resources: no memory or CPU limit ({cgroup} and {limits}); underhood's cgroup only holds the run's processes, with a default task limit.",
				"The root filesystem is shared by {chroot} to {unshare} and writable: what a payload leaves in it, the next step's payload finds.",
			},
			Differs: "The article's chroot runs the shell directly. underhood starts it through a small init of its own, and puts the run in a cgroup of its own, with no memory limit (only the default task limit), so that it can find and end every process of the run afterwards, even one that left its session.",
		},
		Check: StepCheck{Run: check.Chroot, Looks: "BusyBox runs chrooted into it",
			ByHand: "mount proc in it"},
		Tour: TourStop{About: [2]string{
			"chroot changes the root directory of a process and of its children.",
			"The shell gets a filesystem of its own, and nothing else is isolated.",
		}, Cmd: "sudo underhood chroot -- /bin/busybox sh -c 'busybox ls /proc; busybox ps -A'", Demo: (*tour).chroot},
	})
}

// ChrootSpec is the container of the chroot step: no namespace at all,
// only a changed root.
func ChrootSpec(root string) container.Spec {
	return container.Spec{Kind: "chroot", Rootfs: root, Flags: ns.Chroot}
}

// Chroot runs the chroot step.
func Chroot(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("chroot")
	root, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	o.Note("%s %s chrooted into %s: its own filesystem, nothing else isolated.", stepTag(o, s), payloadName(opt), root)
	try(o, opt, "busybox ls /proc and busybox ps -A: no process shows, as no proc is mounted here.")
	return start(o, w, opt, ChrootSpec(root), shell)
}
