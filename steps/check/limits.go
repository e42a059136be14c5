package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ui"
)

// LimitsBox is the cgroup that page 9's commands make by hand.
const LimitsBox = "box"

// TaskCPULimits checks the task and CPU limits of the page's cgroup "box"
// (made by hand: pids/box and cpu/box on v1, one box on v2): a task limit
// that refused forks (pids.events max > 0), a CPU quota that throttled
// (cpu.stat nr_throttled > 0), and no process left in it. underhood's own
// step leaves nothing; without a box, the controllers the step needs are
// checked instead.
func TaskCPULimits(e Env) []Item {
	h, err := cgroup.DetectWith(e.CgroupRoot, e.FSType)
	if err != nil {
		return []Item{{"cgroups", ui.Fail, err.Error(), "sudo underhood doctor says what to change"}}
	}
	v2 := h.Layout == cgroup.V2
	pidsDir, cpuDir := filepath.Join(e.CgroupRoot, "pids", LimitsBox), filepath.Join(e.CgroupRoot, "cpu", LimitsBox)
	pidsRoot, cpuRoot := filepath.Join(e.CgroupRoot, "pids"), filepath.Join(e.CgroupRoot, "cpu")
	if v2 {
		pidsDir, cpuDir, pidsRoot, cpuRoot = filepath.Join(e.CgroupRoot, LimitsBox), filepath.Join(e.CgroupRoot, LimitsBox), e.CgroupRoot, e.CgroupRoot
	}
	if !isDir(pidsDir) && !isDir(cpuDir) && !e.ByHand {
		// underhood's step leaves nothing; its progress says it ran.
		p, _ := e.Workdir.ReadProgress()
		if t, ok := p["limits"]; ok {
			return []Item{controllers(pidsRoot, cpuRoot, v2),
				{"cgroup " + LimitsBox, ui.OK, "none made by hand; sudo underhood limits ran to its end " + when(t) + ", with cgroups of its own, and removed them",
					"to do it by hand: the page's shell commands, then check again"}}
		}
		return []Item{controllers(pidsRoot, cpuRoot, v2),
			{"cgroup " + LimitsBox, ui.Fail, "none now, and sudo underhood limits has not run here: the page's shell commands make " + pidsDir + " and their last line removes it, so there is nothing left to judge",
				"sudo underhood limits, or the page's shell commands with check 9 before their rmdir line"}}
	}
	items := []Item{controllers(pidsRoot, cpuRoot, v2)}
	items = append(items, pidsItems(pidsDir)...)
	items = append(items, cpuItems(cpuDir, v2)...)
	return append(items, leftInBox(pidsDir, cpuDir, v2))
}

// controllers: the pids and cpu controllers are there to be used.
func controllers(pidsRoot, cpuRoot string, v2 bool) Item {
	if v2 {
		have, _ := readValue(filepath.Join(pidsRoot, "cgroup.subtree_control"))
		f := strings.Fields(have)
		if !slices.Contains(f, "pids") || !slices.Contains(f, "cpu") {
			return Item{"controllers", ui.Fail, "cgroup.subtree_control of " + pidsRoot + " is \"" + have + "\": pids and cpu are not handed down",
				"echo \"+pids +cpu\" | sudo tee " + filepath.Join(pidsRoot, "cgroup.subtree_control")}
		}
		return Item{"controllers", ui.OK, "cgroup v2: pids and cpu handed down from " + pidsRoot, ""}
	}
	for _, r := range []string{pidsRoot, cpuRoot} {
		if !isDir(r) {
			return Item{"controllers", ui.Fail, "no v1 hierarchy at " + r, "sudo underhood doctor says what this machine has"}
		}
	}
	return Item{"controllers", ui.OK, "cgroup v1: " + pidsRoot + " and " + cpuRoot, ""}
}

func pidsItems(dir string) []Item {
	max := filepath.Join(dir, "pids.max")
	set := "sudo mkdir -p " + dir + " && echo 64 | sudo tee " + max
	v, err := readValue(max)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []Item{{"task limit", ui.Fail, "no " + max, set}, skipped("forks refused")}
	case err != nil:
		return []Item{{"task limit", ui.Fail, err.Error(), set}, skipped("forks refused")}
	case v == "max":
		return []Item{{"task limit", ui.Fail, "pids.max is max: no limit yet", "echo 64 | sudo tee " + max}, skipped("forks refused")}
	}
	items := []Item{{"task limit", ui.OK, "pids.max = " + v, ""}}
	procs := filepath.Join(dir, "cgroup.procs")
	bomb := "sudo sh -c 'echo $$ > " + procs + " && exec unshare -f -p timeout 2 sh -c \"f(){ f|f& }; f; while :; do :; done\"' 2>/dev/null"
	n, ok, err := keyed(filepath.Join(dir, "pids.events"), "max")
	switch {
	case err != nil || !ok:
		items = append(items, Item{"forks refused", ui.Warn, "cannot tell: no max line in " + filepath.Join(dir, "pids.events"), ""})
	case n == 0:
		items = append(items, Item{"forks refused", ui.Fail, "pids.events max = 0: the limit has refused nothing yet", "run the fork bomb in it: " + bomb})
	default:
		items = append(items, Item{"forks refused", ui.OK, fmt.Sprintf("pids.events max = %d: the kernel refused that many forks at the limit", n), ""})
	}
	return items
}

func cpuItems(dir string, v2 bool) []Item {
	file, set := filepath.Join(dir, "cpu.cfs_quota_us"), "echo 20000 | sudo tee "+filepath.Join(dir, "cpu.cfs_quota_us")
	if v2 {
		file, set = filepath.Join(dir, "cpu.max"), "echo \"20000 100000\" | sudo tee "+filepath.Join(dir, "cpu.max")
	}
	v, err := readValue(file)
	switch {
	case err != nil:
		return []Item{{"CPU quota", ui.Fail, "no " + file, "sudo mkdir -p " + dir + " && " + set}, skipped("throttled")}
	case v2 && strings.HasPrefix(v, "max"), !v2 && v == "-1":
		return []Item{{"CPU quota", ui.Fail, filepath.Base(file) + " is " + v + ": no quota yet", set}, skipped("throttled")}
	}
	items := []Item{{"CPU quota", ui.OK, filepath.Base(file) + " = " + v, ""}}
	loop := "sudo sh -c 'echo $$ > " + filepath.Join(dir, "cgroup.procs") + " && exec timeout 1 sh -c \"while :; do :; done\"'"
	n, ok, err := keyed(filepath.Join(dir, "cpu.stat"), "nr_throttled")
	switch {
	case err != nil || !ok:
		items = append(items, Item{"throttled", ui.Warn, "cannot tell: no nr_throttled in " + filepath.Join(dir, "cpu.stat"), ""})
	case n == 0:
		items = append(items, Item{"throttled", ui.Fail, "cpu.stat nr_throttled = 0: the quota has stopped nothing yet", "run a busy loop in it: " + loop})
	default:
		items = append(items, Item{"throttled", ui.OK, fmt.Sprintf("cpu.stat nr_throttled = %d: stopped in that many periods", n), ""})
	}
	return items
}

// leftInBox: processes still in the box keep it from being removed.
func leftInBox(pidsDir, cpuDir string, v2 bool) Item {
	dirs := []string{pidsDir, cpuDir}
	if v2 {
		dirs = dirs[:1]
	}
	var left []string
	var have []string
	for _, d := range dirs {
		if !isDir(d) {
			continue
		}
		have = append(have, d)
		p, _ := readPids(filepath.Join(d, "cgroup.procs"))
		left = append(left, p...)
	}
	if len(left) > 0 {
		return Item{"processes", ui.Warn, fmt.Sprintf("%d still in it (PID %s)", len(left), strings.Join(left, ", ")),
			"end them (sudo kill " + strings.Join(left, " ") + "), then sudo rmdir " + strings.Join(have, " ")}
	}
	if len(have) == 0 {
		return Item{"processes", ui.OK, "none: there is no box", ""}
	}
	return Item{"processes", ui.OK, "none left in it", "remove it when you are done: sudo rmdir " + strings.Join(have, " ")}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
