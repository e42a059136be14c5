package steps

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "run", Title: "Put it all together: a full container", Part: Article, Kind: Container,
		Long:      "Run a full container: its own root filesystem, a memory cgroup, new PID, mount\nand UTS namespaces, proc and a few devices mounted, chroot, CMD as PID 1.\nEverything is removed afterwards. Part 2 adds to it: --pivot-root (step 8),\n--pids and --cpus (step 9), --drop-privileges (step 10); --isolation full is\nall of them.",
		Options:   WithMemory | WithName | WithLimits | WithIsolation,
		Page:      "07-full-run.md",
		Code:      []string{"lab/container/container.go Run", "lab/ns/setup.go setup", "lab/container/cleanup.go Cleanup"},
		Ephemeral: true, Done: readyToRun, Run: Run,
		Explain: Explanation{
			What: "The whole container: a root filesystem of its own for this run, a memory cgroup, new PID, mount and UTS namespaces with the run's name as hostname, proc and /dev/null, /dev/zero, /dev/urandom mounted, chroot, and the payload as PID 1. Everything is removed afterwards.",
			Why:  "Containers are chroot + namespaces + cgroups. This step puts the three together, as the article's script does, and cleans up after itself even when it is interrupted.",
			Shell: []string{
				"mkdir -p /tmp/container/$$/{bin,dev,etc,proc,sys} && cd /tmp/container/$$",
				"cp ~/Downloads/busybox bin && chmod +x bin/busybox",
				"sudo mkdir /sys/fs/cgroup/memory/busybox-$$ && echo 7340032 | sudo tee /sys/fs/cgroup/memory/busybox-$$/memory.limit_in_bytes",
				"sudo sh -c \"echo $$ > /sys/fs/cgroup/memory/busybox-$$/tasks\"   # this shell, and all it starts, in the cgroup",
				"touch dev/urandom && sudo mount --bind /dev/urandom dev/urandom",
				"sudo unshare -f -p --mount-proc=$PWD/proc chroot . /bin/busybox sh",
				"sudo sh -c \"echo $$ > /sys/fs/cgroup/memory/tasks\"; sudo rmdir /sys/fs/cgroup/memory/busybox-$$",
				"sudo umount dev/urandom; rm -rf /tmp/container/$$",
			},
			Syscalls: []string{
				"mkdir(\"<workdir>/runs/<name>\") + journal: every resource recorded before it is made",
				"ioctl(FICLONE) or copy: BusyBox into runs/<name>/rootfs/bin",
				"mkdir(\"<memory root>/underhood/<name>\"), memory limit, no swap",
				"clone(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS), write(cgroup.procs, pid)",
				"mount(\"/\", MS_REC|MS_PRIVATE), mount(proc), mount(MS_BIND) ×3, sethostname(name)",
				"chroot(\"rootfs\"), execve(payload) as PID 1; afterwards rmdir(cgroup), rm -r runs/<name>",
			},
			Differs: "The article's script puts the wrapping shell itself in the cgroup and mounts in the host's mount table; underhood puts only the container in the cgroup, mounts inside the container's private mount namespace (so nothing needs unmounting on the host), and keeps a journal so that 'underhood cleanup' can undo a run that was killed.",
			Observe: "The hostname is the run's name, busybox ps -A shows PID 1, and the article's data=$(busybox head -c 7500000 /dev/urandom) kills the container. Afterwards nothing of the run is left: see 'underhood ps'.",
		},
		Check: StepCheck{Run: check.Leftovers, Looks: "nothing left behind: runs, mounts, cgroups, processes",
			Target: func(check.Env) string { return "this machine, for what a container leaves behind" }},
		Tour: TourStop{About: [2]string{
			"chroot + namespaces + cgroups, all at once, is a container: its own hostname,",
			"PID 1 alone, a memory limit. The inspector looks at it from the host while it runs.",
		}, Cmd: "sudo underhood run\n# and in its shell: busybox hostname; busybox ps -A; data=$(busybox head -c 7500000 /dev/urandom)", Demo: (*tour).run},
	})
}

// RunSpec is the full container: a root of its own made from BusyBox,
// PID, mount and UTS namespaces, proc and devices, chroot, and a memory
// cgroup.
func RunSpec(name, busyboxPath string, limit int64, host cgroup.Host, parent string) container.Spec {
	return container.Spec{Name: name, Kind: "run", Busybox: busyboxPath, Hostname: name,
		Clone:  unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS,
		Flags:  ns.Private | ns.MountProc | ns.BindDev | ns.Chroot | ns.Hostname,
		Memory: limit, Cgroups: host, CgroupParent: parent,
		Env: append(containerEnv(), `PS1=\h:\w\$ `)}
}

// Run runs the full container.
func Run(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("run")
	if err := needRoot(s.Name); err != nil {
		return err
	}
	if err := busybox.CheckStatic(w.Busybox()); err != nil {
		dl := of("download")
		return ui.Usagef("no usable BusyBox at %s (%v): run 'sudo %s' (%s) first", w.Busybox(), err, dl.Command(), dl.Label())
	}
	host, err := memoryHost(opt)
	if err != nil {
		return err
	}
	if opt.Name != "" {
		if err := state.ValidName(opt.Name); err != nil {
			return ui.Usage(fmt.Errorf("--name: %w", err))
		}
		if _, err := os.Lstat(w.Run(opt.Name)); err == nil {
			if state.Live(w.Run(opt.Name)) {
				return fmt.Errorf("run %s exists: a container of that name is running (see 'sudo underhood ps'); pick another --name", opt.Name)
			}
			return fmt.Errorf("run %s exists: it was cut short and is still at %s; remove it with 'sudo underhood cleanup %s', or pick another --name", opt.Name, w.Run(opt.Name), opt.Name)
		}
	}
	name := opt.Name
	if name == "" {
		name = container.RandomName("box")
	}
	limit := limitOf(opt)
	spec := RunSpec(name, w.Busybox(), limit, host, opt.CgroupParent)
	spec.Keep = opt.Keep
	isolate(&spec, opt)
	spec.Started = func(r *container.Result) {
		o.Note("%s container %s: its own root in %s, PID, mount and UTS namespaces, memory limit %s, %s, host PID %d.",
			stepTag(o, s), r.Name, filepath.Join(r.Dir, "rootfs"), cgroup.FormatSize(limit), isolation(spec), r.HostPID)
		if !r.SwapLimited && proc.Host.SwapOn() {
			o.Warnf("swap is on and this kernel has no swap limit for cgroups: a memory hog may swap instead of being killed.")
		}
	}
	try(o, opt, "busybox hostname; busybox ps -A; then the memory hog: "+HogScript+".")
	return start(o, w, opt, spec, shell)
}
