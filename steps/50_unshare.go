package steps

import (
	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "unshare", Title: "Isolate processes with a PID namespace", Part: Article, Kind: Container,
		Long:      "Start the shell in new PID and mount namespaces with a proc of its own, chrooted.\nInside, 'busybox ps -A' shows only PID 1: the shell.",
		Page:      "05-unshare.md",
		Code:      []string{"lab/ns/ns.go Command", "lab/ns/setup.go setup"},
		Ephemeral: true, Done: readyToRun, Run: Unshare,
		Explain: Explanation{
			What: "Starts the shell in a new PID namespace and a new mount namespace, mounts a proc that belongs to the new PID namespace, and chroots.",
			Why:  "A PID namespace gives the container its own process numbering: its first process is PID 1 and it cannot see the host's processes. The host still sees the container's processes, under their host PIDs.",
			Shell: []string{
				"cd ~/container",
				"sudo unshare -f -p --mount-proc=$PWD/proc chroot . /bin/busybox sh",
				"/ # busybox ps -A         # only PID 1: the shell",
				"# in a second terminal on the host:",
				"ps aux | grep /bin/busybox",
			},
			Syscalls: []string{
				"clone(CLONE_NEWPID|CLONE_NEWNS)      the child is PID 1 of the new namespace",
				"mount(\"\", \"/\", MS_REC|MS_PRIVATE)",
				"mount(\"proc\", \"rootfs/proc\", \"proc\")   a proc for the new PID namespace",
				"chroot(\"rootfs\"), execve(\"/bin/busybox\", [\"busybox\", \"sh\"])   the shell itself is PID 1",
				"mkdir(\"underhood/NAME\"), cgroup.procs   no memory limit, the default task limit: to find all its processes",
			},
			Differs: "unshare -f forks a child and waits for it; underhood clones straight into the namespaces and then replaces its own child with the shell, so the shell really is PID 1 (as with unshare), and prints the PID the host sees. underhood also puts the run in a cgroup of its own, with no memory limit (only the default task limit), so that it can find and end every process of the run afterwards, even one that left its session.",
			Observe: "busybox ps -A shows a single process, PID 1, the shell. underhood prints the same shell's PID on the host: look it up with ps in another terminal.",
			NotIsolated: []string{
				"Only processes and mounts are isolated: network, hostname, IPC, users and the cgroup view are still the host's.",
				"Root in the namespace is the host's root, with every capability: it can mount, make device files, load modules, and leave the chroot ({pivot-root}).",
				"The host's kernel through proc: /proc/sys and /proc/sysrq-trigger are writable ({privileges} makes them read-only).",
				"Resources: no memory or CPU limit ({cgroup} and {limits}).",
			},
		},
		Check: StepCheck{Run: check.PIDNamespace, Looks: "unshare, PID and mount namespaces; a shell alone as PID 1",
			ByHand: "make a memory cgroup by hand"},
		Tour: TourStop{About: [2]string{
			"A PID namespace gives the container its own process numbers:",
			"the shell is PID 1 and sees only itself and what it starts; the host sees it under a PID of its own.",
		}, Cmd: "sudo underhood unshare\n# and in its shell: busybox ps -A", Demo: (*tour).unshare},
	})
}

// UnshareSpec is the container of the unshare step: new PID and mount
// namespaces, a proc of their own, chroot.
func UnshareSpec(root string) container.Spec {
	return container.Spec{Kind: "unshare", Rootfs: root,
		Clone: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Flags: ns.Private | ns.MountProc | ns.Chroot}
}

// Unshare runs the unshare step.
func Unshare(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("unshare")
	root, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	o.Note("%s new PID and mount namespaces, a proc of their own, and chroot into %s.", stepTag(o, s), root)
	spec := UnshareSpec(root)
	spec.Started = func(r *container.Result) {
		o.Note("The host sees this same process as PID %d (in another terminal: ps -o pid,args -p %d).", r.HostPID, r.HostPID)
		try(o, opt, "busybox ps -A: only one process, PID 1, the shell itself.")
	}
	return start(o, w, opt, spec, shell)
}
