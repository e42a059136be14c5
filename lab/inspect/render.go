package inspect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/ui"
)

// maxCommand is where long command lines are cut in tables (JSON has them whole).
const maxCommand = 60

// Write renders one snapshot of a process as text: four sections, each a
// table with a line or two that says what it shows.
func Write(o *ui.IO, r *Report) {
	t := r.Target
	title := fmt.Sprintf("PID %d: %s", t.PID, short(t.Command))
	if t.Name != "" {
		title = fmt.Sprintf("%s (lab container, host PID %d): %s", t.Name, t.PID, short(t.Command))
	}
	o.Say(o.Bold(title))
	if r.Exited {
		o.Say(o.Yellow("It exited while it was being read: what follows is what could be read before."))
	}
	o.Say()
	writeProcesses(o, r)
	writeNamespaces(o, r)
	writeNetwork(o, r)
	writeCgroup(o, r)
	writePrivileges(o, r)
	writeFilesystem(o, r)
}

func heading(o *ui.IO, title, sub string) {
	if sub != "" {
		title += " " + o.Faint("("+sub+")")
	}
	o.Say(o.Bold(title))
}

func writeProcesses(o *ui.IO, r *Report) {
	pr := r.Processes
	heading(o, "Processes", "those in its PID namespace, from /proc/PID/status NSpid")
	rows := make([][]string, 0, len(pr.List))
	for _, p := range pr.List {
		if p.Exited {
			rows = append(rows, []string{strconv.Itoa(p.HostPID), "-", "-", "-", o.Yellow("(exited)")})
			continue
		}
		rows = append(rows, []string{strconv.Itoa(p.HostPID), strconv.Itoa(p.PID), strconv.Itoa(p.PPID),
			strconv.Itoa(p.HostPPID), short(p.Command)})
	}
	o.Table([]string{"HOST PID", "PID INSIDE", "PARENT INSIDE", "PARENT ON HOST", "COMMAND"}, rows)
	if pr.SharedWithHost {
		o.Printf("The host sees %s, and so does %s: it is in the host's PID namespace, so its PIDs are the host's.\n",
			plural(pr.HostCount, "process", "processes"), r.Target.Label())
	} else {
		o.Printf("The host sees %s, the container sees %d. Inside, numbering starts again at 1, and a parent outside the namespace shows as 0.\n",
			plural(pr.HostCount, "process", "processes"), pr.ContainerCount)
	}
	if pr.Unreadable > 0 {
		o.Say(o.Faint(fmt.Sprintf("(%s could not be read: permission denied)", plural(pr.Unreadable, "process", "processes"))))
	}
	o.Say()
}

func writeNamespaces(o *ui.IO, r *Report) {
	heading(o, "Namespaces", "readlink /proc/PID/ns/TYPE gives TYPE:[INODE]; the same inode is the same namespace")
	var rows [][]string
	var iso []string
	for _, n := range r.Namespaces {
		state := o.Faint("shared with host")
		switch {
		case n.Inode == 0 || n.HostInode == 0:
			state = "?"
		case n.Isolated:
			state = o.Green("isolated")
			iso = append(iso, n.Type)
		}
		rows = append(rows, []string{n.Type, inode(n.HostInode), inode(n.Inode), state, n.Isolates})
	}
	o.Table([]string{"TYPE", fmt.Sprintf("HOST (PID %d)", r.Host.PID), r.Target.Label(), "STATE", "ISOLATES"}, rows)
	if len(iso) == 0 {
		o.Printf("Nothing isolated: %s shares every namespace with the host.\n", r.Target.Label())
	} else {
		o.Printf("Isolated: %s (%d of %d); everything else it shares with the host.\n", strings.Join(iso, ", "), len(iso), len(r.Namespaces))
	}
	if r.Host.Note != "" {
		o.Say(o.Faint(r.Host.Note + "."))
	}
	o.Say()
}

// writeNetwork shows a network namespace of the target's own: its
// interfaces, and the host's ends of its veth pairs.
func writeNetwork(o *ui.IO, r *Report) {
	n := r.Network
	if n == nil {
		return
	}
	heading(o, "Network", "ip addr, inside (nsenter -t PID -n) and on the host")
	var rows [][]string
	add := func(side string, ls []Link) {
		for _, l := range ls {
			state := "DOWN"
			if l.Up {
				state = "UP"
			}
			rows = append(rows, []string{side, l.Name, l.Kind, state, strings.Join(l.Addrs, " ")})
		}
	}
	add("inside", n.Inside)
	add("host", n.HostEnds)
	o.Table([]string{"SIDE", "INTERFACE", "KIND", "STATE", "ADDRESSES"}, rows)
	if len(n.HostEnds) == 0 {
		o.Wrapf("No veth pair leads to the host's namespace (PID %d's): the container reaches nothing there.\n", r.Host.PID)
	}
	o.Say()
}

func writeCgroup(o *ui.IO, r *Report) {
	c := r.Cgroup
	if c == nil && r.Exited {
		heading(o, "cgroup", "")
		o.Say("Not read: it exited, and its cgroup may be gone with it.")
		o.Say()
		return
	}
	if c == nil {
		heading(o, "cgroup", "")
		o.Printf("No memory controller on this host (cgroup layout %s).\n\n", r.Host.CgroupLayout)
		return
	}
	heading(o, "cgroup", fmt.Sprintf("%s layout; memory controller on cgroup v%d", r.Host.CgroupLayout, c.Version))
	inside := c.ContainerPath
	if inside == "" {
		inside = "unknown"
	}
	o.Table([]string{"VIEW", "CGROUP PATH", "DIRECTORY"}, [][]string{
		{"host", c.HostPath, c.Dir},
		{r.Target.Label(), inside, ""},
	})
	o.Printf("The host reads the path from /proc/%d/cgroup; %s is %s.\n", r.Target.PID, r.Target.Label(), c.ContainerView)
	if len(c.Files) == 0 {
		o.Say("No memory files here: the root cgroup has no limits of its own.")
		o.Say()
		return
	}
	rows := make([][]string, 0, len(c.Files))
	for _, f := range c.Files {
		rows = append(rows, []string{f.Name, flat(f.Value), f.Human, f.Meaning})
	}
	o.Table([]string{"FILE", "VALUE", "HUMAN", "MEANING"}, rows)
	writeLimits(o, c.Limits)
	o.Say()
}

// writeLimits is the task and CPU limits, with the kernel's counters.
func writeLimits(o *ui.IO, l *Limits) {
	if l == nil || len(l.Files) == 0 {
		return
	}
	o.Say()
	where := l.PidsDir
	if l.CPUDir != "" && l.CPUDir != l.PidsDir {
		where = strings.TrimPrefix(strings.Join([]string{l.PidsDir, l.CPUDir}, " and "), " and ")
	}
	heading(o, "Limits", "tasks and CPU, in "+where)
	rows := make([][]string, 0, len(l.Files))
	for _, f := range l.Files {
		rows = append(rows, []string{f.Name, flat(f.Value), f.Human, f.Meaning})
	}
	o.Table([]string{"FILE", "VALUE", "HUMAN", "MEANING"}, rows)
	tasks := "no task limit"
	if l.PidsMax >= 0 {
		tasks = fmt.Sprintf("%d of at most %d tasks", max(l.PidsCurrent, 0), l.PidsMax)
		if l.PidsDenied > 0 {
			tasks += fmt.Sprintf(", %s at the limit", plural(int(l.PidsDenied), "fork refused", "forks refused"))
		}
	}
	cpu := "no CPU limit"
	if l.CPUQuotaUsec >= 0 {
		cpu = "at most " + cpuShare(l.CPUQuotaUsec, l.CPUPeriodUsec)
		if l.NrThrottled >= 0 {
			cpu += fmt.Sprintf(", throttled in %d periods", l.NrThrottled)
		}
	}
	o.Printf("Now: %s; %s.\n", tasks, cpu)
}

// writePrivileges is what root in the target may do.
func writePrivileges(o *ui.IO, r *Report) {
	p := r.Privileges
	if p == nil {
		return
	}
	heading(o, "Privileges", "from /proc/PID/status: capability sets, no_new_privs, seccomp")
	eff := capList(p.Effective, 4)
	o.Table([]string{"SET", "MASK", "WHAT"}, [][]string{
		{"effective", p.CapEff, p.Summary + ": " + eff},
		{"permitted", p.CapPrm, "what it may make effective"},
		{"bounding", p.CapBnd, "what an execve as root may get back"},
	})
	nnp := "0: a setuid file runs with its owner's privileges"
	if p.NoNewPrivs {
		nnp = "1: nothing it runs gains privileges"
	}
	o.Printf("no_new_privs %s; seccomp %s.\n", nnp, seccompMode(p.Seccomp))
	o.Say()
}

func writeFilesystem(o *ui.IO, r *Report) {
	fsys := r.Filesystem
	heading(o, "Filesystem", "its root, its mounts (/proc/PID/mountinfo) and its hostname")
	name := fsys.Hostname
	switch fsys.HostnameSource {
	case HostnameFromLab:
		name += " (set by underhood run)"
	case "":
		name = "unknown"
	}
	o.Table([]string{"VIEW", "ROOT", "MOUNTS", "HOSTNAME"}, [][]string{
		{fmt.Sprintf("host (PID %d)", r.Host.PID), "/", strconv.Itoa(fsys.HostMountCount), r.Host.Hostname},
		{r.Target.Label(), fsys.Root, strconv.Itoa(fsys.MountCount), name},
	})
	if fsys.Root != "/" && fsys.Root != "" {
		o.Printf("Its / is %s on the host (readlink /proc/%d/root): chroot or pivot_root put it there.\n", fsys.Root, r.Target.PID)
	}
	switch fsys.HostnameSource {
	case HostnameFromLab:
		o.Printf("Its hostname lives in its own UTS namespace: the one above is what underhood set, as the host cannot read it without entering the namespace (nsenter -u -t %d hostname).\n", r.Target.PID)
	case "":
		o.Printf("Its hostname lives in its own UTS namespace, which cannot be read from outside without entering it (nsenter -u -t %d hostname).\n", r.Target.PID)
	}
	mntShared := false
	for _, n := range r.Namespaces {
		if n.Type == "mnt" && !n.Isolated {
			mntShared = true
		}
	}
	if mntShared && fsys.Root == "/" {
		o.Say("It shares the host's mount namespace and root: it sees the host's mounts.")
		return
	}
	if fsys.MountCount == 0 {
		o.Printf("It sees no mounts at all (the host has %d): every one is outside its root, so even /proc is empty inside.\n", fsys.HostMountCount)
		return
	}
	o.Printf("The mounts it sees (%d; the host has %d):\n", fsys.MountCount, fsys.HostMountCount)
	rows := make([][]string, 0, len(fsys.Mounts))
	for _, m := range fsys.Mounts {
		rows = append(rows, []string{m.Mountpoint, m.FSType, m.Source})
	}
	o.Table([]string{"MOUNTPOINT", "FSTYPE", "SOURCE"}, rows)
}

// WriteOverview renders the host's namespaces, lsns-style, with the lab's
// containers named.
func WriteOverview(o *ui.IO, ov *Overview) {
	h := ov.Host
	o.Say(o.Bold(fmt.Sprintf("Host %s: %s, %d mounts, cgroup layout %s",
		h.Hostname, plural(h.Processes, "process", "processes"), h.Mounts, h.CgroupLayout)))
	o.Say()
	rows := make([][]string, 0, len(ov.Namespaces))
	var host, labs, other int
	var names []string
	for _, n := range ov.Namespaces {
		owner := ""
		switch {
		case n.Host:
			owner = o.Faint("host")
			host++
		case n.LabContainer != "":
			owner = o.Cyan("lab: " + n.LabContainer)
			labs++
			for _, c := range strings.Split(n.LabContainer, ",") {
				if !slices.Contains(names, c) {
					names = append(names, c)
				}
			}
		default:
			other++
		}
		rows = append(rows, []string{strconv.FormatUint(n.Inode, 10), n.Type, strconv.Itoa(n.NProcs),
			strconv.Itoa(n.PID), short(n.Command), owner})
	}
	o.Table([]string{"NS", "TYPE", "NPROCS", "PID", "COMMAND", "OWNER"}, rows)
	// The prose wraps at the terminal's width, as the table fits it.
	o.Wrapf("%d namespaces: %d are the host's own (those of PID %d), %d were made by lab containers%s, %d by other processes.\n",
		len(ov.Namespaces), host, h.PID, labs, labList(names), other)
	o.Wrapf("Every process is in exactly one namespace of each type; a container is a process whose namespaces are not all the host's.\n")
	if ov.Unreadable > 0 {
		o.Wrapf("%s\n", o.Faint(fmt.Sprintf("(%s could not be read: permission denied)", plural(ov.Unreadable, "process", "processes"))))
	}
	switch {
	case ov.Zombies == 1:
		o.Wrapf("%s\n", o.Faint("(1 process is a zombie: it has exited, but its parent has not reaped it yet; it counts only in its pid and user namespaces, the ones the kernel keeps until then)"))
	case ov.Zombies > 1:
		o.Wrapf("%s\n", o.Faint(fmt.Sprintf("(%d processes are zombies: they have exited, but their parents have not reaped them yet; they count only in their pid and user namespaces, the ones the kernel keeps until then)", ov.Zombies)))
	}
	if h.Note != "" {
		o.Wrapf("%s\n", o.Faint(h.Note+"."))
	}
	o.Wrapf("Look at one closely: sudo underhood inspect NAME, or sudo underhood inspect --pid PID.\n")
}

func labList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func inode(n uint64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(n, 10)
}

// short cuts a command line for a table cell.
func short(s string) string {
	r := []rune(s)
	if len(r) <= maxCommand {
		return s
	}
	return string(r[:maxCommand-1]) + "…"
}

// flat puts a control file's value on one line, and shortens long ID lists.
func flat(v string) string {
	if f := strings.Fields(v); len(f) > 8 && !strings.Contains(v, " ") {
		return strings.Join(f[:8], " ") + fmt.Sprintf(" … (%d in all)", len(f))
	}
	return strings.ReplaceAll(v, "\n", ", ")
}
