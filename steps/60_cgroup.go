package steps

import (
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// HogScript is the article's memory test, for the BusyBox shell.
const HogScript = "toomuch=$(busybox head -c 7500000 /dev/urandom)"

func init() {
	register(&Step{Name: "cgroup", Title: "Limit memory with a cgroup", Part: Article, Kind: Container,
		Long:      "Run CMD (default: the article's memory hog) in a memory cgroup with a limit.\nThe hog is killed by the kernel's OOM killer: exit status 137.",
		Options:   WithMemory,
		Page:      "06-cgroup.md",
		Code:      []string{"lab/cgroup/manager.go New", "lab/cgroup/v1.go", "lab/cgroup/v2.go"},
		Ephemeral: true, Done: readyToRun, Run: Cgroup,
		Explain: Explanation{
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
			Differs: "The article's paths are cgroup v1 (tasks, memory.limit_in_bytes). On cgroup v2 the same lesson uses cgroup.procs and memory.max; underhood picks the right one. It also forbids swap, without which the hog may swap instead of being killed, and it tells an OOM kill from any other SIGKILL by the kernel's own counter. " +
				"The BusyBox it runs on the host is a private copy of the one step 1 verified, checked against the checksum recorded then, not the shared root's bin/busybox, which a payload of the earlier steps could have replaced.",
			Observe: "The payload is killed (exit status 137 = 128 + SIGKILL) and underhood reports the kernel's oom_kill counter going up. The cgroup is removed afterwards.",
			NotIsolated: []string{
				"Everything but memory: the payload runs on the host's filesystem, in the host's namespaces, as the host's root; a cgroup limits, it does not hide.",
				"CPU: no limit ({limits} adds cpu.max); tasks: only underhood's default pids limit ({limits} shows a fork storm stopped).",
				"Devices, I/O and network bandwidth: no limit at all.",
			},
		},
		Check: StepCheck{Run: check.MemoryCgroup, Looks: "a memory cgroup with the article's limit of 7340032 bytes: the one made by hand (/sys/fs/cgroup/memory/busybox, or /sys/fs/cgroup/busybox on cgroup v2), and without --rootfs a probe like underhood's own",
			Target: func(e check.Env) string { return "the memory cgroups in " + e.CgroupRoot },
			ByHand: "remove the cgroup when you are done, then put it all together"},
		Tour: TourStop{About: [2]string{
			"A memory cgroup limits what its processes may use: the article's 7340032 bytes.",
			"The hog reads 7500000 bytes into a shell variable, and the kernel's OOM killer ends it.",
		}, Cmd: "sudo underhood cgroup", Demo: (*tour).cgroup},
	})
}

// CgroupSpec is the container of the cgroup step: no namespace and no new
// root, only a memory cgroup with a limit. bin is the directory of the
// verified BusyBox, first in the payload's PATH.
func CgroupSpec(root, bin string, limit int64, host cgroup.Host, parent string) container.Spec {
	return container.Spec{Kind: "cgroup", Rootfs: root, Memory: limit, Cgroups: host, CgroupParent: parent,
		Env: hostEnv(bin)}
}

// Cgroup runs the cgroup step. Its payload runs on the host's filesystem,
// as host root, with the lab's verified BusyBox first in PATH, as the
// article's cgroup section does. That BusyBox is the private copy of the
// one step 1 verified, not the root filesystem's bin/busybox: a payload of
// steps 3–5 could have replaced that one with anything.
func Cgroup(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("cgroup")
	root, err := sharedRoot(w, s)
	if err != nil {
		return err
	}
	host, err := memoryHost(opt)
	if err != nil {
		return err
	}
	bb, err := verifiedBusybox(w)
	if err != nil {
		return err
	}
	if !sameFile(rootfs.Busybox(root), recordedSum(w)) {
		o.Warnf("%s is not the BusyBox that %s verified (a payload may have replaced it): this step runs the verified copy %s instead; 'sudo %s' puts it back in the root.",
			rootfs.Busybox(root), of("download").Label(), bb, of("rootfs").Command())
	}
	limit := limitOf(opt)
	def := []string{bb, "sh", "-c", HogScript}
	what := "the article's test: " + HogScript
	if len(opt.Argv) > 0 {
		what = strings.Join(opt.Argv, " ")
	}
	spec := CgroupSpec(root, filepath.Dir(bb), limit, host, opt.CgroupParent)
	spec.Started = func(r *container.Result) {
		o.Note("%s a memory cgroup at %s limited to %d bytes (%s); the payload runs in it on the host's filesystem.",
			stepTag(o, s), r.Cgroup, limit, cgroup.FormatSize(limit))
		if !r.SwapLimited && proc.Host.SwapOn() {
			o.Warnf("swap is on and this kernel has no swap limit for cgroups: the payload may swap instead of being killed.")
		}
		o.Note("Running %s", what)
	}
	return start(o, w, opt, spec, def)
}

// sameFile reports whether the regular file at path has the SHA-256 sum.
func sameFile(path, sum string) bool {
	got, err := busybox.FileSHA256(path)
	return err == nil && sum != "" && got == sum
}
