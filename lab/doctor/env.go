package doctor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/ui"
)

// Where doctor runs: WSL, a container, a virtual machine (which one), and
// on which architecture. Every sign is a file, read under the Options' roots.

func (d *doctor) file(rel string) string { return filepath.Join(d.o.FileRoot, rel) }
func (d *doctor) sys(rel string) string  { return filepath.Join(d.o.SysRoot, rel) }

// text is a file's content without surrounding space; "" when unreadable.
func text(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (d *doctor) environment() {
	const name = "environment"
	release := text(d.proc("sys/kernel/osrelease"))
	lower := strings.ToLower(release)
	wsl := strings.Contains(lower, "microsoft")
	if wsl && !strings.Contains(lower, "wsl2") && !strings.Contains(lower, "microsoft-standard") {
		d.add(name, ui.Fail, fmt.Sprintf("WSL1 (Linux %q): Windows translates the system calls; there are no namespaces or cgroups to isolate with", release),
			"convert the distribution to WSL2, in Windows: wsl --set-version <distribution> 2")
		return
	}
	root := d.rootMount()
	if c, ok := d.container(release, root); ok {
		d.add(name, c.level, c.detail, c.hint)
		return
	}
	if wsl {
		d.wsl2(name, release)
		return
	}
	d.machine(name, root)
}

// rootMount is the mount in effect on /, or nil.
func (d *doctor) rootMount() *mount.Info {
	infos, err := mount.Read(d.proc("self/mountinfo"))
	if err != nil {
		return nil
	}
	var root *mount.Info
	for i := range infos {
		if infos[i].Mountpoint == "/" {
			root = &infos[i]
		}
	}
	return root
}

// onDisk says the root is a block device of the machine itself: a VM's or
// a computer's disk, which a container's root never is.
var diskRE = regexp.MustCompile(`^/dev/(([svx]|xv)d[a-z]+|nvme\d|mmcblk\d)`)

func onDisk(root *mount.Info) bool { return root != nil && diskRE.MatchString(root.Source) }

type row struct {
	level        ui.Level
	detail, hint string
}

// cgroupPathRE finds a container engine in a cgroup path of PID 1.
var cgroupPathRE = regexp.MustCompile(`/(docker|libpod|lxc|kubepods|machine\.slice/machine)[-/.]([0-9a-f]{12})?`)

var engines = map[string]string{
	"docker": "Docker", "podman": "Podman", "libpod": "Podman", "lxc": "LXC", "lxc-libvirt": "LXC",
	"systemd-nspawn": "systemd-nspawn", "machine.slice/machine": "systemd-nspawn", "kubepods": "Kubernetes",
}

// container looks for the signs container engines leave: the environment
// of PID 1 and /run/systemd/container (systemd's convention), /.dockerenv,
// /run/.containerenv, PID 1's cgroup paths, an overlay root.
func (d *doctor) container(release string, root *mount.Info) (row, bool) {
	var signs []string
	engine := ""
	set := func(e string) {
		if engine == "" {
			engine = e
		}
	}
	if b, err := os.ReadFile(d.proc("1/environ")); err == nil {
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, "container="); ok && v != "" {
				signs = append(signs, "container="+v+" in the environment of PID 1")
				set(or(engines[v], v))
			}
		}
	}
	if v := text(d.file("run/systemd/container")); v != "" {
		signs = append(signs, "/run/systemd/container says "+v)
		set(or(engines[v], v))
	}
	if exists(d.file("run/.containerenv")) {
		signs = append(signs, "/run/.containerenv")
		set("Podman")
	}
	if m := cgroupPathRE.FindStringSubmatch(text(d.proc("1/cgroup"))); m != nil {
		signs = append(signs, fmt.Sprintf("PID 1 is in the cgroup %s", strings.TrimSuffix(m[0], "-")))
		set(engines[m[1]])
	}
	overlay := root != nil && root.FSType == "overlay"
	if overlay {
		signs = append(signs, "the root is overlay")
	}
	dockerenv := exists(d.file(".dockerenv"))
	switch {
	case dockerenv && len(signs) == 0 && onDisk(root):
		// An image made from a container's tree keeps the file; its root
		// is a disk of its own, which no container has.
		return row{}, false
	case dockerenv:
		signs = append([]string{"/.dockerenv"}, signs...)
		set("Docker")
	case engine == "" && overlay:
		// A live system's root is overlay too: not enough on its own.
		return row{}, false
	}
	if len(signs) == 0 {
		return row{}, false
	}
	host := ""
	if strings.Contains(release, "linuxkit") {
		host = fmt.Sprintf(", in Docker Desktop's VM (Linux %s)", release)
	} else if strings.Contains(strings.ToLower(release), "microsoft") {
		host = fmt.Sprintf(", in WSL2 (Linux %s)", release)
	}
	what := or(engine, "a container") + " container"
	if engine == "systemd-nspawn" {
		what = "a systemd-nspawn guest"
	}
	admin, seccomp := d.privileges()
	ro := d.cgroupReadOnly()
	state := fmt.Sprintf("CAP_SYS_ADMIN %s, seccomp %s, /sys/fs/cgroup %s", yesNo(admin, "yes", "no"), seccomp, yesNo(ro, "read-only", "writable"))
	detail := fmt.Sprintf("%s (%s)%s; %s", what, strings.Join(signs, ", "), host, state)
	if admin && !ro {
		return row{Info, detail + ": the steps can run, inside the container's view (its own processes, its own cgroup tree)",
			"nothing to do; the workshop's VM shows what the guide shows (docs/vm.md)"}, true
	}
	rs := d.o.Words.RootSteps
	why := rs + " make cgroups, and most of them mount and unshare: that takes CAP_SYS_ADMIN, a writable /sys/fs/cgroup and a seccomp profile that allows unshare"
	var hint string
	switch engine {
	case "Podman":
		hint = "start it privileged: podman run --privileged --cgroupns=host -it …, or use a VM (docs/vm.md)"
	case "LXC":
		hint = "let it nest: lxc config set <name> security.nesting=true and security.privileged=true, then restart it; or use a VM (docs/vm.md)"
	case "systemd-nspawn":
		hint = "give it the capability and a writable cgroup tree: systemd-nspawn --boot --capability=CAP_SYS_ADMIN …, or use a VM (docs/vm.md)"
	case "Kubernetes":
		hint = "a pod needs securityContext.privileged: true; a VM is simpler (docs/vm.md)"
	default:
		hint = "start it privileged: docker run --privileged --cgroupns=host -it …, or use a VM (docs/vm.md)"
	}
	return row{ui.Warn, detail + ": " + why, hint}, true
}

// hostOf is the host part of a URL.
func hostOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	h, _, _ := strings.Cut(rest, "/")
	return h
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// capSysAdmin is CAP_SYS_ADMIN's bit in /proc/PID/status's CapEff.
const capSysAdmin = 21

// privileges reads this process's effective capabilities and seccomp mode.
func (d *doctor) privileges() (admin bool, seccomp string) {
	seccomp = "unknown"
	f, err := os.Open(d.proc("self/status"))
	if err != nil {
		return false, seccomp
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			if c, err := strconv.ParseUint(v, 16, 64); err == nil {
				admin = c&(1<<capSysAdmin) != 0
			}
		case "Seccomp":
			seccomp = map[string]string{"0": "off", "1": "strict", "2": "filtering"}[v]
		}
	}
	return admin, or(seccomp, "unknown")
}

// cgroupReadOnly says whether /sys/fs/cgroup, or a hierarchy below it, is
// mounted read-only, as Docker does without --privileged.
func (d *doctor) cgroupReadOnly() bool {
	infos, err := mount.Read(d.proc("self/mountinfo"))
	if err != nil {
		return false
	}
	for _, i := range infos {
		if i.Mountpoint == "/sys/fs/cgroup" || strings.HasPrefix(i.Mountpoint, "/sys/fs/cgroup/") {
			for _, o := range strings.Split(i.Options, ",") {
				if o == "ro" {
					return true
				}
			}
		}
	}
	return false
}

func (d *doctor) wsl2(name, release string) {
	signs := "Linux " + release
	for _, f := range []string{"sys/fs/binfmt_misc/WSLInterop", "sys/fs/binfmt_misc/WSLInterop-late"} {
		if exists(d.proc(f)) {
			signs += ", " + filepath.Join("/proc", f)
			break
		}
	}
	systemd := wslSystemd(text(d.file("etc/wsl.conf")))
	h, _ := cgroup.DetectWith(d.o.CgroupRoot, d.o.FSType)
	detail := fmt.Sprintf("WSL2 (%s); systemd %s in /etc/wsl.conf; cgroup %s", signs, yesNo(systemd, "on", "off"), h.Layout)
	var todo []string
	if !systemd {
		todo = append(todo, "put systemd=true under [boot] in /etc/wsl.conf")
	}
	if h.Layout != cgroup.V2 {
		todo = append(todo, `for cgroup v2 alone, as on the workshop's VM: kernelCommandLine = cgroup_no_v1=all under [wsl2] in %UserProfile%\.wslconfig`)
	}
	hint := "nothing to do: WSL2 runs the lab as a VM does"
	if len(todo) > 0 {
		hint = strings.Join(todo, "; ") + "; then, in Windows: wsl --shutdown, and open the distribution again"
	}
	switch {
	case h.MemoryVersion == 0:
		d.add(name, ui.Warn, detail+": no memory controller, so memory cannot be limited", hint)
	case h.Layout == cgroup.V2:
		d.add(name, Info, detail+" with memory: the lab runs as on the workshop's VM", hint)
	default:
		d.add(name, Info, fmt.Sprintf("%s, memory on v%d: the lab runs, with the article's v1 files", detail, h.MemoryVersion), hint)
	}
}

// wslSystemd reads systemd=true in the [boot] section of wsl.conf.
func wslSystemd(conf string) bool {
	section := ""
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = strings.ToLower(strings.Trim(l, "[]"))
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok && section == "boot" && strings.TrimSpace(k) == "systemd" {
			return strings.EqualFold(strings.TrimSpace(v), "true")
		}
	}
	return false
}

// hypervisors maps what the DMI tables say (sys_vendor, product_name) to
// the hypervisor, first match wins.
var hypervisors = []struct{ vendor, product, is string }{
	{"Apple", "Virtualization", "Apple's Virtualization.framework (Lima's vz, UTM, Tart)"},
	{"QEMU", "", "QEMU/KVM (Lima, Multipass, UTM, libvirt)"},
	{"", "KVM", "KVM"},
	{"innotek", "", "VirtualBox"},
	{"", "VirtualBox", "VirtualBox"},
	{"VMware", "", "VMware"},
	{"Parallels", "", "Parallels"},
	{"Microsoft", "Virtual Machine", "Hyper-V (Multipass on Windows, Azure)"},
	{"Amazon EC2", "", "Amazon EC2"},
	{"Google", "Google Compute Engine", "Google Compute Engine"},
	{"DigitalOcean", "", "DigitalOcean"},
	{"Hetzner", "", "Hetzner Cloud"},
	{"Xen", "", "Xen"},
}

// machine names the kind of machine: a VM from its DMI tables, and the
// tool that made it (Lima, Vagrant, or what provision.sh wrote down).
func (d *doctor) machine(name string, root *mount.Info) {
	vendor := text(d.sys("class/dmi/id/sys_vendor"))
	product := text(d.sys("class/dmi/id/product_name"))
	var what string
	for _, h := range hypervisors {
		if (h.vendor == "" || strings.Contains(vendor, h.vendor)) && (h.product == "" || strings.Contains(product, h.product)) {
			what = fmt.Sprintf("a VM on %s (DMI: %s)", h.is, strings.TrimSpace(vendor+" "+product))
			break
		}
	}
	flagged := strings.Contains(" "+cpuFlags(d.proc("cpuinfo"))+" ", " hypervisor ")
	switch {
	case what != "":
	case flagged && vendor == "" && product == "":
		what = "a VM (the CPU's hypervisor flag) naming no hypervisor: no DMI tables in /sys/class/dmi/id, as in microVMs (Firecracker)"
	case flagged:
		what = fmt.Sprintf("a VM (the CPU's hypervisor flag; DMI: %s)", strings.TrimSpace(vendor+" "+product))
	case vendor != "" || product != "":
		what = fmt.Sprintf("no sign of a VM: %s", strings.TrimSpace(vendor+" "+product))
	default:
		what = "no sign of a VM or a container"
	}
	var made []string
	if exists(d.file("mnt/lima-cidata")) {
		made = append(made, "Lima (/mnt/lima-cidata)")
	}
	if exists(d.file("home/vagrant")) {
		made = append(made, "Vagrant (/home/vagrant)")
	}
	if way := provisioned(text(d.file(ProvisionedFile))); way != "" {
		made = append(made, fmt.Sprintf("provisioned for the workshop (%s, %s)", way, "/"+ProvisionedFile))
	}
	if len(made) > 0 {
		what += "; " + strings.Join(made, ", ")
	}
	if exists(d.file(".dockerenv")) && onDisk(root) {
		what += fmt.Sprintf("; /.dockerenv exists, but / is %s on the disk %s: a machine made from a container image, not a container", root.FSType, root.Source)
	}
	d.add(name, ui.OK, what, "")
}

// ProvisionedFile is where scripts/provision.sh writes down how the machine
// was made (way=vagrant, lima, multipass, …), relative to /.
const ProvisionedFile = "etc/underhood/provisioned"

func provisioned(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "way="); ok {
			return v
		}
	}
	return ""
}

// cpuFlags is the first flags line of /proc/cpuinfo (x86; arm64 has none).
func cpuFlags(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "flags" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// architecture compares the kernel's machine with underhood's build, and
// says where BusyBox comes from on it.
func (d *doctor) architecture() {
	const name = "architecture"
	m, goarch := d.o.Machine, d.o.GOARCH
	built := busybox.MachineName(goarch)
	if m == "arm64" {
		m = "aarch64"
	}
	if built != "" && m != "" && built != m {
		d.add(name, ui.Warn, fmt.Sprintf("the kernel is %s, but underhood is built for %s: it runs emulated (qemu-user or Rosetta), and so would every container's init", m, goarch),
			"build it for this machine: scripts/provision.sh does, or CGO_ENABLED=0 go build ./cmd/underhood here")
		return
	}
	if m == "" {
		m = or(built, goarch)
	}
	if src, err := busybox.DefaultFor(m); err == nil {
		d.add(name, ui.OK, fmt.Sprintf("%s (underhood built for %s): %s fetches BusyBox %s for %s from %s, pinned by SHA-256",
			m, goarch, d.o.Words.DownloadStep, busybox.DefaultVersion, m, hostOf(src.URL)), "")
		return
	}
	dl := d.o.Words.Download + " --from /bin/busybox"
	for _, p := range busybox.LocalPaths {
		if busybox.CheckStaticFor(d.file(p), goarch) == nil {
			d.add(name, Info, fmt.Sprintf("%s (underhood built for %s): busybox.net has no pinned BusyBox for it; the distribution's static one is at %s", m, goarch, p),
				strings.Replace(dl, "/bin/busybox", p, 1))
			return
		}
	}
	d.add(name, ui.Warn, fmt.Sprintf("%s (underhood built for %s): busybox.net has no pinned BusyBox for it, and no static BusyBox is at %s", m, goarch, strings.Join(busybox.LocalPaths, " or ")),
		"install the distribution's: sudo apt-get install busybox-static; then "+dl)
}
