package doctor

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
)

func (d *doctor) asRoot() string { return "run it as root: " + d.o.Words.Doctor }

func (d *doctor) root() {
	_, err := d.o.LookPath("sudo")
	sudo := err == nil
	bare := strings.TrimPrefix(d.o.Words.Doctor, "sudo ")
	switch {
	case d.o.Euid == 0 && sudo:
		d.add("running as root", ui.OK, "uid 0", "")
	case d.o.Euid == 0:
		d.add("running as root", ui.OK, "uid 0, and no sudo on this machine: type every command shown without its leading sudo", "")
	case sudo:
		d.add("running as root", ui.Warn,
			fmt.Sprintf("uid %d: doctor can only look, not try; %s need root", d.o.Euid, d.o.Words.RootSteps),
			fmt.Sprintf("%s (and sudo for %s)", d.o.Words.Doctor, d.o.Words.RootSteps))
	default:
		d.add("running as root", ui.Warn,
			fmt.Sprintf("uid %d, and no sudo on this machine: doctor can only look, not try; %s need root", d.o.Euid, d.o.Words.RootSteps),
			fmt.Sprintf("become root (su -, or log in as root), then run the commands without sudo: %s", bare))
	}
}

var releaseRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

func (d *doctor) kernel() {
	const name = "kernel"
	path := d.proc("sys/kernel/osrelease")
	b, err := os.ReadFile(path)
	if err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("cannot read the version: %v", err), "check with uname -r: the lab needs Linux 4.13 or newer")
		return
	}
	rel := strings.TrimSpace(string(b))
	m := releaseRE.FindStringSubmatch(rel)
	if m == nil {
		d.add(name, ui.Warn, fmt.Sprintf("Linux %q: cannot tell the version", rel), "the lab needs Linux 4.13 or newer")
		return
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	switch v := major*1000 + minor; {
	case v < 3008:
		d.add(name, ui.Fail, fmt.Sprintf("Linux %s (uname -r): before 3.8 the kernel lacks complete PID, mount and user namespaces", rel),
			"use a newer kernel (4.13 or later), e.g. the workshop's VM")
	case v < 4013:
		d.add(name, ui.Warn, fmt.Sprintf("Linux %s (uname -r): before 4.13 memory.oom_control has no oom_kill counter, so OOM kills are counted from memory.failcnt", rel),
			"the lab runs; for exact OOM-kill counts use Linux 4.13 or later")
	default:
		d.add(name, ui.OK, fmt.Sprintf("Linux %s (uname -r)", rel), "")
	}
}

var namespaces = []struct {
	name, isolates, config string
	required               bool
}{
	{"cgroup", "the cgroup tree a process sees", "CONFIG_CGROUPS (Linux 4.6+)", false},
	{"ipc", "System V IPC and message queues", "CONFIG_IPC_NS", false},
	{"mnt", "the mount table", "CONFIG_NAMESPACES", true},
	{"net", "network devices and ports", "CONFIG_NET_NS", false},
	{"pid", "process IDs: the container's first process is PID 1", "CONFIG_PID_NS", true},
	{"time", "the boot and monotonic clocks", "CONFIG_TIME_NS (Linux 5.6+)", false},
	{"user", "user and group IDs", "CONFIG_USER_NS", false},
	{"uts", "the hostname", "CONFIG_UTS_NS", false},
}

func (d *doctor) namespaces() {
	for _, ns := range namespaces {
		name := "namespace " + ns.name
		path := d.proc(filepath.Join("self/ns", ns.name))
		if _, err := os.Lstat(path); err == nil {
			d.add(name, ui.OK, "isolates "+ns.isolates, "")
			continue
		}
		l, why := ui.Warn, "the workshop's steps do not need it, real runtimes do"
		if ns.required {
			l, why = ui.Fail, "the workshop needs it"
		}
		d.add(name, l, fmt.Sprintf("%s is missing: this kernel has no %s namespace; %s", path, ns.name, why),
			fmt.Sprintf("use a kernel built with %s, e.g. the workshop's VM", ns.config))
	}
}

// cgroups reports the layout and the memory controller.
func (d *doctor) cgroups() cgroup.Host {
	root := d.o.CgroupRoot
	h, err := cgroup.DetectWith(root, d.o.FSType)
	if err != nil {
		d.add("cgroup layout", ui.Fail, err.Error(), "see what is mounted: grep cgroup /proc/self/mountinfo")
		d.add("memory controller", ui.Fail, "not looked for: the layout is unknown", "fix the cgroup layout first")
		return h
	}
	switch h.Layout {
	case cgroup.V1:
		d.add("cgroup layout", ui.OK, fmt.Sprintf("v1: a hierarchy per controller at %s/<controller>, as in the article", root), "")
	case cgroup.Hybrid:
		d.add("cgroup layout", ui.OK, fmt.Sprintf("hybrid: v1 controllers at %s/<controller>, cgroup2 at %s (%s)",
			root, h.Unified, controllers(h.Unified)), "")
	case cgroup.V2:
		d.add("cgroup layout", ui.OK, fmt.Sprintf("v2: one unified hierarchy at %s (%s); the article's files have v2 names",
			root, controllers(root)), "")
	default:
		d.add("cgroup layout", ui.Fail, fmt.Sprintf("no cgroup filesystem is mounted at %s", root),
			fmt.Sprintf("sudo mount -t cgroup2 none %s, or boot a distribution with systemd", root))
	}

	switch {
	case h.MemoryVersion == 1:
		d.add("memory controller", ui.OK, fmt.Sprintf("cgroup v1 at %s: memory.limit_in_bytes, as in the article", h.MemoryRoot), "")
	case h.MemoryVersion == 2:
		d.add("memory controller", ui.OK, fmt.Sprintf("cgroup v2 at %s: memory.max plays the article's memory.limit_in_bytes", h.MemoryRoot), "")
	case h.Layout == cgroup.None:
		d.add("memory controller", ui.Fail, "none: no cgroup filesystem", "fix the cgroup layout first")
	case h.Layout == cgroup.V2:
		d.add("memory controller", ui.Fail, fmt.Sprintf("memory is not in %s: %s cannot limit memory", filepath.Join(root, "cgroup.controllers"), d.o.Words.MemoryStep),
			"boot with cgroup_enable=memory on the kernel command line (some ARM boards turn it off)")
	default:
		d.add("memory controller", ui.Fail, fmt.Sprintf("no v1 memory hierarchy at %s: %s cannot limit memory", filepath.Join(root, "memory"), d.o.Words.MemoryStep),
			fmt.Sprintf("sudo mkdir -p %[1]s/memory && sudo mount -t cgroup -o memory memory %[1]s/memory, or boot with cgroup_enable=memory", root))
	}
	return h
}

func controllers(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return "no controllers"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// swapKnown says what the probe learnt about swap limits.
type swapKnown struct {
	known, limited bool
}

// probe creates and removes underhood/doctor-<random> with the default
// limit: the same calls the memory limit makes.
func (d *doctor) probe(h cgroup.Host) swapKnown {
	const name = "create a cgroup"
	switch {
	case h.MemoryVersion == 0:
		d.add(name, ui.Warn, "not tested: no memory controller", "fix the memory controller row first")
		return swapKnown{}
	case !d.o.Probe:
		d.add(name, ui.Warn, "not tested: the probe is turned off", "run "+d.o.Words.Doctor+" to try it")
		return swapKnown{}
	case d.o.Euid != 0:
		d.add(name, ui.Warn, "not tested: needs root", d.asRoot())
		return swapKnown{}
	}
	parent := filepath.Join(h.MemoryRoot, cgroup.DefaultParent)
	_, err := os.Stat(parent)
	hadParent := err == nil
	l, detail, hint, swap := tryCgroup(h, d.o.Words.MemoryStep)
	if !hadParent {
		// Leave the host as found: the parent goes too if doctor made it.
		if _, err := cgroup.RemoveParent(h, cgroup.DefaultParent); err != nil && l == ui.OK {
			l, detail, hint = ui.Warn, fmt.Sprintf("%s, but not its parent: %v", detail, err),
				fmt.Sprintf("remove it by hand: sudo rmdir %s", parent)
		}
	}
	d.add(name, l, detail, hint)
	return swap
}

func tryCgroup(h cgroup.Host, memoryStep string) (l ui.Level, detail, hint string, swap swapKnown) {
	m, err := cgroup.New(h, cgroup.DefaultParent, randomName("doctor-"))
	if err == nil {
		err = m.Create(cgroup.DefaultLimit)
	}
	if err != nil {
		return ui.Fail, err.Error(),
			fmt.Sprintf("%s will fail the same way: check that %s is mounted read-write and that nothing (a read-only /sys, a container you are in) stops root from making cgroups there", memoryStep, h.MemoryRoot),
			swap
	}
	swap = swapKnown{known: true, limited: m.SwapLimited()}
	if err := m.Remove(); err != nil {
		return ui.Fail, fmt.Sprintf("made %s but cannot remove it: %v", m.Path(), err),
			fmt.Sprintf("remove it by hand: sudo rmdir %s", m.Path()), swap
	}
	return ui.OK, fmt.Sprintf("made and removed %s (%s limit)", m.Path(), cgroup.FormatSize(cgroup.DefaultLimit)), "", swap
}

func (d *doctor) swap(h cgroup.Host, probed swapKnown) {
	const name = "swap"
	devices, kib, err := proc.Root(d.o.ProcRoot).Swaps()
	if err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("cannot tell whether swap is on: %v", err),
			"check with swapon --show; turn swap off for the workshop: sudo swapoff -a")
		return
	}

	file := "memory.memsw.limit_in_bytes"
	if h.MemoryVersion == 2 {
		file = "memory.swap.max"
	}
	known, limited := probed.known, probed.limited
	if !known {
		known, limited = swapFiles(h, d.proc("self/cgroup"))
	}

	if devices == 0 {
		detail := "off: the memory hog cannot swap, so the kernel kills it at the limit"
		switch {
		case h.MemoryVersion == 0:
		case known && limited:
			detail += "; " + file + " exists"
		case known:
			detail += "; no " + file + " (it would not matter while swap is off)"
		}
		d.add(name, ui.OK, detail, "")
		return
	}
	on := fmt.Sprintf("on (%s on %s)", cgroup.FormatSize(kib*1024), plural(devices, "device"))
	switch {
	case h.MemoryVersion == 0:
		d.add(name, ui.Warn, on+": with no memory controller nothing limits it", "fix the memory controller row first")
	case known && limited:
		d.add(name, ui.OK, fmt.Sprintf("%s, and %s exists, so underhood forbids swap in its cgroups", on, file), "")
	case known:
		hint := "turn swap off for the workshop: sudo swapoff -a"
		if h.MemoryVersion == 1 {
			hint += ", or boot with swapaccount=1"
		}
		d.add(name, ui.Warn, fmt.Sprintf("%s, and no %s to limit it: the memory hog may swap instead of being killed", on, file), hint)
	default:
		d.add(name, ui.Warn, fmt.Sprintf("%s; whether %s exists is known only once a cgroup is made", on, file),
			d.asRoot()+", or turn swap off for the workshop: sudo swapoff -a")
	}
}

// swapFiles looks for the swap limit file without making a cgroup: v1 has
// it at the hierarchy root; v2 only in child cgroups, so look in the lab's
// parent and in the cgroup this process lives in.
func swapFiles(h cgroup.Host, selfCgroup string) (known, limited bool) {
	switch h.MemoryVersion {
	case 1:
		return true, exists(filepath.Join(h.MemoryRoot, "memory.memsw.limit_in_bytes"))
	case 2:
		dirs := []string{filepath.Join(h.MemoryRoot, cgroup.DefaultParent)}
		if b, err := os.ReadFile(selfCgroup); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if p, ok := strings.CutPrefix(l, "0::"); ok {
					for p != "/" && p != "." && p != "" {
						dirs = append(dirs, filepath.Join(h.MemoryRoot, p))
						p = filepath.Dir(p)
					}
				}
			}
		}
		for _, dir := range dirs {
			if exists(filepath.Join(dir, "memory.max")) {
				return true, exists(filepath.Join(dir, "memory.swap.max"))
			}
		}
	}
	return false, false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (d *doctor) propagation() {
	const name = "propagation of /"
	path := d.proc("self/mountinfo")
	infos, err := mount.Read(path)
	if err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("cannot read mounts: %v", err), "check with findmnt -o TARGET,PROPAGATION /")
		return
	}
	var root *mount.Info
	for i := range infos {
		if infos[i].Mountpoint == "/" {
			root = &infos[i] // the last mount on / is the one in effect
		}
	}
	if root == nil {
		d.add(name, ui.Warn, fmt.Sprintf("%s has no mount on /", path), "check with findmnt -o TARGET,PROPAGATION /")
		return
	}
	const after = "underhood runs mount --make-rprivate / in its own mount namespace before mounting anything"
	tag := strings.Join(root.Optional, " ")
	switch root.Propagation() {
	case "shared":
		d.add(name, Info, fmt.Sprintf("shared (%s, systemd's default): a mount in a new mount namespace would reach the host, so %s", tag, after),
			"nothing to do")
	case "slave":
		d.add(name, ui.OK, fmt.Sprintf("slave (%s): mounts do not go back to the host; still, %s", tag, after), "")
	default:
		d.add(name, ui.OK, "private: mounts stay in their namespace; still, "+after, "")
	}
}

func (d *doctor) busybox() {
	const name = "busybox"
	path := d.o.Workdir.Busybox()
	dl := d.o.Words.Download
	download := dl + ", or " + dl + " --from /bin/busybox"
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		d.add(name, ui.Warn, fmt.Sprintf("missing at %s: %s fetches it", path, d.o.Words.DownloadStep), download)
		return
	}
	if err != nil {
		d.add(name, ui.Warn, err.Error(), download)
		return
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		d.add(name, ui.Warn, fmt.Sprintf("%s is not an executable file (%s)", path, fi.Mode()), download)
		return
	}
	f, err := elf.Open(path)
	if err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("%s is not a Linux program: %v", path, err), download)
		return
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if dynamic {
		d.add(name, ui.Warn, fmt.Sprintf("%s is dynamically linked: it cannot run in the chroot, which has no shared libraries", path),
			dl+" (a static build), or --from a static one such as Debian's busybox-static /bin/busybox")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--help").Output()
	first, _, _ := strings.Cut(string(out), "\n")
	if err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("%s does not run: %v", path, err), download)
		return
	}
	if !strings.HasPrefix(first, "BusyBox ") {
		d.add(name, ui.Warn, fmt.Sprintf("%s runs but is not BusyBox: --help says %q", path, first), download)
		return
	}
	version := strings.TrimSuffix(strings.TrimSuffix(first, "."), " multi-call binary")
	d.add(name, ui.OK, fmt.Sprintf("%s, static, %s, at %s", version, cgroup.FormatSize(fi.Size()), path), "")
}

func (d *doctor) userns() {
	const name = "unprivileged userns"
	sysctls := []struct{ file, restrictedIf, relax string }{
		{"sys/kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"},
		{"sys/user/max_user_namespaces", "0", "user.max_user_namespaces=15000"},
		{"sys/kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns=0"},
	}
	var seen, missing, restricted, relax []string
	noneAtAll := false
	for _, s := range sysctls {
		key := filepath.Base(s.file)
		b, err := os.ReadFile(d.proc(s.file))
		if err != nil {
			missing = append(missing, key)
			continue
		}
		v := strings.TrimSpace(string(b))
		seen = append(seen, key+"="+v)
		if v == s.restrictedIf {
			restricted = append(restricted, key+"="+v)
			relax = append(relax, s.relax)
			noneAtAll = noneAtAll || key == "max_user_namespaces"
		}
	}
	detail := strings.Join(seen, ", ")
	if len(missing) > 0 {
		if detail != "" {
			detail += "; "
		}
		detail += "not on this kernel: " + strings.Join(missing, ", ")
	}
	if len(restricted) == 0 {
		d.add(name, ui.OK, "not restricted: "+detail, "")
		return
	}
	effect := "underhood runs as root, so it is not affected"
	if noneAtAll {
		effect = "no process, root included, may create a user namespace: the user namespace step cannot run"
	}
	d.add(name, ui.Warn, fmt.Sprintf("restricted by %s (%s); %s", strings.Join(restricted, ", "), detail, effect),
		"for the user namespace step, or rootless tools (unshare -r, rootless podman): sudo sysctl "+strings.Join(relax, " "))
}

// network makes a veth pair in a network namespace of its own (and so
// removes it), as the network step needs, and looks for the /30 it would
// take among this machine's routes.
func (d *doctor) network() {
	const name = "veth pair"
	switch {
	case !d.o.Probe:
		d.add(name, ui.Warn, "not tested: the probe is turned off", "run underhood doctor to try it")
		return
	case d.o.Euid != 0:
		d.add(name, ui.Warn, "not tested: needs root", d.asRoot())
		return
	}
	if err := netns.VethSupported(); err != nil {
		d.add(name, ui.Warn, fmt.Sprintf("%v: the network step shows lo alone and leaves the pair out", err),
			"sudo modprobe veth, or a kernel built with CONFIG_VETH")
		return
	}
	var near []string
	routes, _ := netns.Routes(nil)
	for _, r := range routes {
		if r.Bits() > 0 && r.Overlaps(netns.Base) {
			near = append(near, r.String())
		}
	}
	h, p, err := netns.Pick(nil)
	switch {
	case err != nil:
		d.add(name, ui.Warn, err.Error(), "the network step and run --net veth need a /30 of "+netns.Base.String()+" that no route covers")
	case len(near) > 0:
		d.add(name, ui.OK, fmt.Sprintf("made and removed one in a namespace of its own; routes in %s (%s) are avoided: e.g. %s and %s",
			netns.Base, strings.Join(near, ", "), h.Addr(), p.Addr()), "")
	default:
		d.add(name, ui.OK, fmt.Sprintf("made and removed one in a namespace of its own; no route of this machine's is in %s, from which the lab takes a /30",
			netns.Base), "")
	}
}
