package steps

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// StormScript is the classic fork bomb, for two seconds: every shell starts
// two more, without end. When the outer shell (PID 1) exits, the kernel
// ends every process of its PID namespace.
// The bomb runs in a subshell: ash ends a shell whose fork fails, and the
// outer shell, which keeps the time and reports, must not be one of them
// (it was, now and then, when the bomb filled the table between its own
// two forks of f|f, and the step ended early without a word).
const StormScript = `busybox sleep 2 & timer=$!; (f(){ f|f& }; f) 2>/dev/null; wait $timer; echo "two seconds of fork storm are over"`

// LoopScript counts for one second of wall-clock time and says how far.
const LoopScript = `busybox timeout 1 busybox sh -c 'trap "echo \$n; exit 0" TERM; n=0; while :; do n=$((n+1)); done'`

func init() {
	register(&Step{Name: "limits", Title: "More limits: processes and CPU", Part: Beyond, Kind: Container,
		Long: "Two demos in the full container. Two seconds of fork bomb stop at the task\n" +
			"limit (--pids, default 64 here), and the kernel counts the forks it\n" +
			"refused. A busy loop runs for one second without a CPU limit, then at --cpus\n" +
			"(default 0.2), and is throttled. With -- CMD, runs CMD with those limits.",
		Options:   WithMemory | WithLimits,
		Page:      "10-limits.md",
		Code:      []string{"lab/cgroup/limits.go SetLimits", "lab/cgroup/limits.go Counters", "lab/container/container.go setLimits"},
		Ephemeral: true, Done: readyToRun, Run: Limits,
		Explain: Explanation{
			What: "Puts the full container in a cgroup that also limits its number of tasks (pids.max) and its CPU time (cpu.max), then runs a fork storm and a busy loop in it.",
			Why: "A memory limit alone leaves the machine open to a fork storm, which fills the kernel's process table, and to a busy loop, which takes a whole CPU from everyone else. " +
				"The pids controller refuses a fork past its limit; the cpu controller lets the cgroup run for its quota of each period and then stops it until the next one.",
			Shell: []string{
				"# cgroup v2 (one directory; cat /sys/fs/cgroup/cgroup.subtree_control must list pids and cpu):",
				"sudo mkdir /sys/fs/cgroup/box && echo 64 | sudo tee /sys/fs/cgroup/box/pids.max",
				"echo '20000 100000' | sudo tee /sys/fs/cgroup/box/cpu.max      # 20 % of one CPU",
				"sudo sh -c 'echo $$ > /sys/fs/cgroup/box/cgroup.procs && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null",
				"sudo sh -c 'echo $$ > /sys/fs/cgroup/box/cgroup.procs && exec timeout 1 sh -c \"while :; do :; done\"'",
				"grep max /sys/fs/cgroup/box/pids.events; grep throttled /sys/fs/cgroup/box/cpu.stat",
				"sudo rmdir /sys/fs/cgroup/box",
				"# cgroup v1 (one hierarchy per controller):",
				"sudo mkdir /sys/fs/cgroup/pids/box /sys/fs/cgroup/cpu/box",
				"echo 64 | sudo tee /sys/fs/cgroup/pids/box/pids.max",
				"echo 20000 | sudo tee /sys/fs/cgroup/cpu/box/cpu.cfs_quota_us    # 20 % of one CPU",
				"sudo sh -c 'echo $$ > /sys/fs/cgroup/pids/box/cgroup.procs && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null",
				"sudo sh -c 'echo $$ > /sys/fs/cgroup/cpu/box/cgroup.procs && exec timeout 1 sh -c \"while :; do :; done\"'",
				"grep max /sys/fs/cgroup/pids/box/pids.events; grep throttled /sys/fs/cgroup/cpu/box/cpu.stat",
				"sudo rmdir /sys/fs/cgroup/pids/box /sys/fs/cgroup/cpu/box",
			},
			Syscalls: []string{
				"v2: write(cgroup.subtree_control, \"+memory +pids +cpu\") in each parent",
				"v2: write(pids.max, \"64\"), write(cpu.max, \"20000 100000\")",
				"v1: mkdir(<pids root>/underhood/<name>), write(pids.max); mkdir(<cpu root>/underhood/<name>), write(cpu.cfs_period_us, cpu.cfs_quota_us)",
				"v1: write(cgroup.procs, pid) in each hierarchy",
				"fork() in the container → EAGAIN at the limit; read pids.events: max",
				"read cpu.stat: nr_throttled, throttled_usec (v2) / throttled_time (v1)",
			},
			Differs: "docker run --pids-limit and --cpus are these same files. Every underhood run with a cgroup now gets a task limit of " + strconv.Itoa(cgroup.DefaultPids) + " by default, so no payload can take the machine's process table.",
			Observe: "The storm ends with the kernel's count of refused forks in the thousands, and underhood itself unharmed. The throttled loop counts to about a fifth of the free one, and cpu.stat says how often it was stopped.",
		},
		Check: StepCheck{Run: check.TaskCPULimits, Machine: true, Looks: "the page's cgroup box: a task limit that refused forks, a CPU quota that throttled",
			ByHand: "remove the box cgroups, then start a shell with fewer privileges, with setpriv, as the page shows",
			Target: func(e check.Env) string { return "the cgroup " + check.LimitsBox + " below " + e.CgroupRoot }},
		Tour: TourStop{About: [2]string{
			"A memory limit does not stop a fork storm or a busy loop.",
			"pids.max refuses forks past a count; cpu.max gives a share of each 100 ms.",
		}, Cmd: "sudo underhood limits", Demo: (*tour).limits},
	})
}

// LimitsSpec is the full container with task and CPU limits.
func LimitsSpec(name, busyboxPath string, memory int64, l cgroup.Limits, host cgroup.Host, parent string) container.Spec {
	s := RunSpec(name, busyboxPath, memory, host, parent)
	s.Kind, s.Limits = "limits", l
	return s
}

// Limits runs the limits step.
func Limits(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("limits")
	if err := needRoot(s.Name); err != nil {
		return err
	}
	if err := usableBusybox(w); err != nil {
		return err
	}
	host, err := memoryHost(opt)
	if err != nil {
		return err
	}
	l := limitsOf(opt)
	if len(opt.Argv) > 0 {
		spec := LimitsSpec(container.RandomName("limits"), w.Busybox(), limitOf(opt), l, host, opt.CgroupParent)
		spec.Started = func(r *container.Result) {
			cpu := "no CPU quota (--cpus X sets one)"
			if l.CPUQuota > 0 {
				cpu = fmt.Sprintf("%.2g CPUs", float64(l.CPUQuota)/float64(l.CPUPeriod))
			}
			pids := "the default task limit"
			if l.Pids > 0 {
				pids = fmt.Sprintf("pids.max = %d", l.Pids)
			}
			o.Note("%s a full container in %s with %s, %s and %s of memory.", stepTag(o, s), r.Cgroup, pids, cpu, cgroup.FormatSize(limitOf(opt)))
			o.Note("Running %s", payloadName(opt))
		}
		return start(o, w, opt, spec, nil)
	}
	if opt.Pids == 0 || opt.Pids == cgroup.DefaultPids {
		l.Pids = 64
	}
	if l.CPUQuota == 0 {
		l.CPUQuota, l.CPUPeriod = cgroup.DefaultCPUPeriod/5, cgroup.DefaultCPUPeriod
	}
	memory := max(limitOf(opt), 64<<20) // room for a storm's worth of shells

	o.Note("%s two seconds of fork bomb, f(){ f|f& }; f, in a container with pids.max = %d:", stepTag(o, s), l.Pids)
	storm := LimitsSpec(container.RandomName("storm"), w.Busybox(), memory, cgroup.Limits{Pids: l.Pids}, host, opt.CgroupParent)
	storm.Argv = []string{"/bin/busybox", "sh", "-c", StormScript}
	r, err := launch(o, w, opt, &storm)
	if err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	c := r.Counters
	o.Note("  the kernel refused %d forks at the limit (pids.events max = %d); underhood, outside the cgroup, never noticed.", c.PidsDenied, c.PidsDenied)

	o.Note("")
	// The file of the layout in use: v1's cpu controller is on v1 when
	// the memory controller is (hybrid too), with its quota in a file of
	// its own.
	files := fmt.Sprintf("cpu.max %d %d", l.CPUQuota, l.CPUPeriod)
	if host.MemoryVersion == 1 {
		files = fmt.Sprintf("cpu.cfs_quota_us %d, cpu.cfs_period_us %d", l.CPUQuota, l.CPUPeriod)
	}
	o.Note("%s a busy loop for one second, first with no CPU limit, then at %.2g CPUs (%s):", stepTag(o, s), float64(l.CPUQuota)/float64(l.CPUPeriod), files)
	free, _, err := loop(o, w, opt, host, memory, cgroup.Limits{})
	if err != nil {
		return err
	}
	held, hc, err := loop(o, w, opt, host, memory, cgroup.Limits{CPUQuota: l.CPUQuota, CPUPeriod: l.CPUPeriod})
	if err != nil {
		return err
	}
	o.Note("  free: counted to %d; limited: to %d (%.0f %%), throttled in %d periods for %s (cpu.stat).",
		free, held, 100*float64(held)/float64(max(free, 1)), hc.NrThrottled, time.Duration(hc.ThrottledUsec)*time.Microsecond)
	if c.PidsDenied == 0 || hc.NrThrottled == 0 {
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("a limit did not show: forks refused %d, periods throttled %d (see sudo underhood doctor)", c.PidsDenied, hc.NrThrottled)}
	}
	_ = w.RecordProgress(s.Name, time.Now())
	o.Next(s.NextHint())
	return nil
}

// loop runs the counting loop with limits l and returns how far it got.
func loop(o *ui.IO, w state.Workdir, opt ContainerOptions, host cgroup.Host, memory int64, l cgroup.Limits) (int64, cgroup.Counters, error) {
	spec := LimitsSpec(container.RandomName("loop"), w.Busybox(), memory, l, host, opt.CgroupParent)
	spec.Argv = []string{"/bin/busybox", "sh", "-c", LoopScript}
	var out bytes.Buffer
	r, err := launchTee(o, w, opt, &spec, &out)
	if err != nil || r.Interrupted != nil {
		return 0, cgroup.Counters{}, stopped(o, err, r)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return 0, r.Counters, fmt.Errorf("the loop printed %q, not a count", out.String())
	}
	return n, r.Counters, nil
}
