package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

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
		Options:   WithMemory | WithName | WithLimits | WithImage | WithNet | WithIsolation,
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
				"sudo umount dev/urandom; cd ~ && rm -rf /tmp/container/$$",
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
			NotIsolated: []string{
				"This container is escapable: root inside is the host's root, and the classic chroot escape reaches the host's / ({pivot-root} shows it; pivot_root closes it).",
				"Privileges: the full capability set, no no_new_privs, no seccomp filter ({privileges} drops them to runc's set and loads a filter).",
				"The host's kernel through proc: /proc/sys, /proc/sysrq-trigger and the like are writable, and /proc/kcore and /proc/keys not masked ({privileges} masks and freezes them).",
				"Devices: no device cgroup; with CAP_MKNOD root can make a node for the host's disk and read it ({privileges} drops CAP_MKNOD; no step adds a device cgroup).",
				"Network, IPC, users and the cgroup view: no namespace for any of them, in this lab at all.",
				"Resources: memory only, and the default task limit ({limits} adds CPU and a tighter pids.max).",
			},
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

// rootlessReady checks what run --rootless needs: a user who is not root,
// a work directory of the user's own, and no veth pair (its host end would
// be in the host's network, which only root may change).
func rootlessReady(w state.Workdir, opt ContainerOptions) error {
	if os.Geteuid() == 0 {
		return ui.Usagef("--rootless is for a user without root; as root, 'sudo underhood userns' maps the container's root to nobody")
	}
	if opt.Net == "veth" {
		return ui.Usagef("--net veth needs root (its host end goes in the host's network); with --rootless, use --net none or host")
	}
	dir := w.Root
	for {
		if _, err := os.Stat(dir); err == nil || dir == "/" {
			break
		}
		dir = filepath.Dir(dir)
	}
	if unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
		return ui.Usagef("--rootless: the work directory %s is not yours to write (%s): give one with --workdir, e.g. --workdir ~/underhood-lab", w.Root, dir)
	}
	if why := ns.UserNSRefused(""); why != "" {
		return fmt.Errorf("--rootless: this kernel refuses user namespaces to users: %s", why)
	}
	return nil
}

// Run runs the full container.
func Run(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("run")
	if opt.Rootless {
		if err := rootlessReady(w, opt); err != nil {
			return err
		}
	} else if err := needRoot(s.Name); err != nil {
		return err
	}
	if err := usableBusybox(w); err != nil {
		return err
	}
	host, err := memoryHost(opt)
	var usage *ui.UsageError
	if err != nil && (!opt.Rootless || errors.As(err, &usage)) {
		return err
	}
	var deleg cgroup.Delegation
	var skip string
	if opt.Rootless {
		if deleg, skip, err = rootlessCgroup(o, host, err, opt); err != nil {
			return err
		}
	}
	if opt.Name != "" {
		if err := state.ValidName(opt.Name); err != nil {
			return ui.Usage(fmt.Errorf("--name: %w", err))
		}
		if err := cgroup.CheckName(opt.Name); err != nil {
			return ui.Usage(fmt.Errorf("--name: %w", err))
		}
		if err := nameTaken(w, opt.Name); err != nil {
			return err
		}
	}
	name := opt.Name
	if name == "" {
		name = container.RandomName("box")
	}
	limit := limitOf(opt)
	spec := RunSpec(name, w.Busybox(), limit, host, opt.CgroupParent)
	def, from := shell, ""
	if opt.Image != "" {
		dir, tag := ParseImageRef(opt.Image)
		argv, env, err := ImageCommand(dir, tag)
		if err != nil {
			return ui.Usagef("--image %s: %v", opt.Image, err)
		}
		if len(argv) == 0 && len(opt.Argv) == 0 {
			return ui.Usagef("--image %s: the image names no command (Entrypoint, Cmd): give one after --", opt.Image)
		}
		spec = ImageSpec(name, dir, tag, limit, host, opt.CgroupParent)
		spec.Env, def, from = env, argv, ", unpacked from the image "+opt.Image
	}
	spec.Keep = opt.Keep
	isolate(&spec, opt) // --pids, --cpus (step 9), --pivot-root (8), --drop-privileges (10)
	kinds := "PID, mount and UTS namespaces"
	if opt.Isolation == "full" {
		spec.Clone |= unix.CLONE_NEWIPC
		spec.Flags |= ns.CgroupNS
		kinds = "PID, mount, UTS, IPC and cgroup namespaces"
	}
	memory := func(*container.Result) string { return "memory limit " + cgroup.FormatSize(limit) }
	var unlimited []string
	if opt.Rootless {
		// A user namespace first, whose root is this user: the others are
		// made with it, and belong to it.
		spec.Users, spec.Group = os.Getuid(), os.Getgid()
		kinds = "a user namespace (root inside is you, uid " + strconv.Itoa(os.Getuid()) + "), " + kinds
		if skip != "" {
			spec.Memory = 0
			memory = func(*container.Result) string { return "no memory limit" }
		} else {
			unlimited = delegate(&spec, deleg)
			memory = func(r *container.Result) string {
				return "memory limit " + cgroup.FormatSize(limit) + " in " + r.Cgroup + ", delegated to you"
			}
		}
	}
	network := ""
	switch opt.Net {
	case "none":
		spec.Clone |= unix.CLONE_NEWNET
		network = " Network: a namespace of its own with only lo, down."
	case "veth":
		v, err := VethFor(name)
		if err != nil {
			return err
		}
		spec.Clone |= unix.CLONE_NEWNET
		spec.Net = &container.Network{Veth: v}
		network = fmt.Sprintf(" Network: a namespace of its own, joined by veth %s %s on the host to eth0 %s inside.", v.Host, v.HostAddr, v.PeerAddr)
	}
	spec.Started = func(r *container.Result) {
		o.Note("%s container %s: its own root in %s%s, %s, %s, %s, host PID %d.%s",
			stepTag(o, s), r.Name, filepath.Join(r.Dir, "rootfs"), from, kinds, memory(r), isolation(spec), r.HostPID, network)
		if skip != "" {
			o.Note("No cgroup limits: %s", skip)
		}
		for _, u := range unlimited {
			o.Note("%s", u)
		}
		if r.Cgroup != "" && !r.SwapLimited && proc.Host.SwapOn() {
			o.Warnf("swap is on and this kernel has no swap limit for cgroups: a memory hog may swap instead of being killed.")
		}
		if opt.Image == "" {
			// Last, right above the shell's prompt.
			try(o, opt, "busybox hostname; busybox ps -A; then the memory hog: "+HogScript+".")
		}
	}
	err = start(o, w, opt, spec, def)
	if errors.Is(err, state.ErrRunExists) {
		// Taken between the look above and the start: say by whom.
		if taken := nameTaken(w, name); taken != nil {
			return taken
		}
	}
	return err
}

// rootlessCgroup is where a run of a user who is not root gets its limits:
// a cgroup delegated to the user, the parent given with --cgroup-parent
// or, on cgroup v2, the user's own cgroup (under 'systemd-run --user
// --scope -p Delegate=yes'); else skip says why not, and what would give
// one. A --cgroup-parent that is not the user's is a mistake: exit 2.
func rootlessCgroup(o *ui.IO, host cgroup.Host, hostErr error, opt ContainerOptions) (d cgroup.Delegation, skip string, err error) {
	if hostErr != nil {
		return d, hostErr.Error(), nil
	}
	parent := opt.CgroupParent
	if parent == "" {
		parent = cgroup.DefaultParent
	}
	given := opt.ParentGiven || parent != cgroup.DefaultParent
	d, err = cgroup.Delegated(host, parent, cgroup.Self(), !given)
	var nd *cgroup.NotDelegatedError
	switch {
	case err == nil:
		return d, "", nil
	case !errors.As(err, &nd):
		return d, "", err
	case given:
		return d, "", ui.Usagef("--cgroup-parent %s: %v; give one delegated to you, or leave the flag out", parent, nd)
	case nd.Own:
		self := "underhood"
		if o.Invocation != "" {
			self = o.Invocation
		}
		return d, fmt.Sprintf("%v; for one: systemd-run --user --scope -p Delegate=yes %s run --rootless …", nd, self), nil
	}
	return d, fmt.Sprintf("%v; on cgroup v1 only root can make you one (the user namespace page says how), then give it with --cgroup-parent", nd), nil
}

// delegate puts a rootless run's cgroup where d says, with the limits d's
// controllers allow; it returns what it left out, and why.
func delegate(spec *container.Spec, d cgroup.Delegation) []string {
	spec.Cgroups, spec.CgroupParent, spec.Settle = d.Host, d.Parent, d.Settle
	var out []string
	if !d.Pids {
		// The default task limit goes without a word; one asked for does not.
		if spec.Limits.Pids != cgroup.DefaultPids {
			out = append(out, "No task limit: the pids controller is not delegated to you.")
		}
		spec.Limits.Pids = 0
	}
	if !d.CPU && spec.Limits.CPUQuota > 0 {
		spec.Limits.CPUQuota, spec.Limits.CPUPeriod = 0, 0
		out = append(out, "No CPU limit: the cpu controller is not delegated to you.")
	}
	return out
}

// nameTaken says why the run name is not free, if it is not: a run that is
// running, one being made this moment, or one that was cut short. Only the
// last is stale and is for cleanup.
func nameTaken(w state.Workdir, name string) error {
	dir := w.Run(name)
	if _, err := os.Lstat(dir); err != nil {
		return nil
	}
	owner := 0
	if es, err := state.ReadJournal(dir); err == nil {
		if info := state.Summarize(name, dir, es); info.Owner.PID > 0 {
			if st, err := proc.Host.StartTime(info.Owner.PID); err == nil && st == info.Owner.Start {
				owner = info.Owner.PID
			}
		}
	} else if _, err := os.Lstat(filepath.Join(dir, state.JournalFile)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run %s exists at %s but has no journal yet: another underhood may be making it just now; pick another --name, or see 'sudo underhood ps'", name, dir)
	}
	if state.Live(dir) || owner > 0 {
		if owner > 0 {
			return fmt.Errorf("run %s is running (pid %d); pick another --name or wait", name, owner)
		}
		return fmt.Errorf("run %s is running; pick another --name or wait (see 'sudo underhood ps')", name)
	}
	return fmt.Errorf("run %s exists: it was cut short and is still at %s; remove it with 'sudo underhood cleanup %s', or pick another --name", name, dir, name)
}
