package steps

// The explanations of steps 3–7. Steps 1 and 2 keep theirs with their code.

var explainChroot = Explanation{
	What: "Starts a BusyBox shell whose root directory is the lab's root filesystem. The shell and everything it starts see only the files below that directory.",
	Why:  "Changing the root is the filesystem part of a container: the process gets a tree of its own and cannot reach the host's files by path. It isolates nothing else.",
	Shell: []string{
		"cd ~/container",
		"sudo chroot . /bin/busybox sh",
		"busybox ls /proc      # empty",
		"busybox ps -A         # only its header: no process",
	},
	Syscalls: []string{
		"clone(2) + execve(/proc/self/exe)   underhood re-executes itself as a small init",
		"chroot(\"<workdir>/rootfs\"), chdir(\"/\")",
		"execve(\"/bin/busybox\", [\"busybox\", \"sh\"])",
	},
	Observe: "busybox ls /proc and busybox ps -A show nothing: no proc filesystem is mounted in the new root, so there is no way to see processes.",
}

var explainMountProc = Explanation{
	What: "Mounts a proc filesystem at rootfs/proc, then chroots into the root and starts a shell.",
	Why:  "ps reads /proc. Once proc is mounted, the chrooted shell sees every process of the host: a changed root alone does not hide processes.",
	Shell: []string{
		"sudo mount -t proc proc ~/container/proc",
		"sudo chroot ~/container /bin/busybox sh",
		"busybox ps -A         # every host process",
		"exit; sudo umount ~/container/proc",
	},
	Syscalls: []string{
		"clone(CLONE_NEWNS)                   a private copy of the mount table",
		"mount(\"\", \"/\", MS_REC|MS_PRIVATE)   nothing propagates back to the host",
		"mount(\"proc\", \"rootfs/proc\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC)",
		"chroot(\"rootfs\"), chdir(\"/\"), execve(\"/bin/busybox\", [\"busybox\", \"sh\"])",
	},
	Differs: "The article mounts proc in the host's own mount table and has to remember to unmount it. underhood mounts it inside a private mount namespace: the host's mount table never changes, and the mount disappears by itself when the shell exits. The processes seen are the same, because the PID namespace is still the host's.",
	Observe: "busybox ps -A lists systemd, kernel threads and everything else running on the host. That is the problem the next step fixes.",
}

var explainUnshare = Explanation{
	What: "Starts the shell in a new PID namespace and a new mount namespace, mounts a proc that belongs to the new PID namespace, and chroots.",
	Why:  "A PID namespace gives the container its own process numbering: its first process is PID 1 and it cannot see the host's processes. The host still sees the container's processes, under their host PIDs.",
	Shell: []string{
		"sudo unshare -f -p --mount-proc=$PWD/proc chroot . /bin/busybox sh",
		"busybox ps -A         # only PID 1: the shell",
		"# in a second terminal on the host:",
		"ps aux | grep /bin/busybox",
	},
	Syscalls: []string{
		"clone(CLONE_NEWPID|CLONE_NEWNS)      the child is PID 1 of the new namespace",
		"mount(\"\", \"/\", MS_REC|MS_PRIVATE)",
		"mount(\"proc\", \"rootfs/proc\", \"proc\")   a proc for the new PID namespace",
		"chroot(\"rootfs\"), execve(\"/bin/busybox\", [\"busybox\", \"sh\"])   the shell itself is PID 1",
	},
	Differs: "unshare -f forks a child and waits for it; underhood clones straight into the namespaces and then replaces its own child with the shell, so the shell really is PID 1 (as with unshare), and prints the PID the host sees.",
	Observe: "busybox ps -A shows a single process, PID 1, the shell. underhood prints the same shell's PID on the host: look it up with ps in another terminal.",
}

var explainCgroup = Explanation{
	What: "Creates a memory cgroup with a limit (7340032 bytes, the article's 7 MB, unless --memory says otherwise), puts the payload in it, and by default runs the article's test: read 7500000 bytes of /dev/urandom into a shell variable.",
	Why:  "Control groups limit resources. A process that needs more memory than its cgroup allows is killed by the kernel's OOM killer, and the rest of the machine is unaffected.",
	Shell: []string{
		"sudo mkdir /sys/fs/cgroup/memory/busybox",
		"echo 7340032 | sudo tee /sys/fs/cgroup/memory/busybox/memory.limit_in_bytes",
		"sudo sh -c 'echo $$ >> /sys/fs/cgroup/memory/busybox/tasks; toomuch=$(head -c 7500000 /dev/urandom)'",
		"sudo rmdir /sys/fs/cgroup/memory/busybox",
	},
	Syscalls: []string{
		"mkdir(\"<memory root>/underhood/<name>\")",
		"cgroup v1: write memory.limit_in_bytes, memory.memsw.limit_in_bytes (no swap)",
		"cgroup v2: write +memory +pids to cgroup.subtree_control, memory.max, memory.swap.max=0",
		"clone(2), write(<cgroup>/cgroup.procs, pid), execve(\"busybox\", [\"sh\", \"-c\", …])",
		"wait4(2) → SIGKILL; read memory.oom_control / memory.events: oom_kill",
		"rmdir(\"<memory root>/underhood/<name>\")",
	},
	Differs: "The article's paths are cgroup v1 (tasks, memory.limit_in_bytes). On cgroup v2 the same lesson uses cgroup.procs and memory.max; underhood picks the right one. It also forbids swap, without which the hog may swap instead of being killed, and it tells an OOM kill from any other SIGKILL by the kernel's own counter.",
	Observe: "The payload is killed (exit status 137 = 128 + SIGKILL) and underhood reports the kernel's oom_kill counter going up. The cgroup is removed afterwards.",
}

var explainRun = Explanation{
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
}
