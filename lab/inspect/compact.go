package inspect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/ui"
)

// The sections a compact view can show, in the order it shows them.
const (
	SectionCgroup     = "cgroup"
	SectionProcesses  = "processes"
	SectionNamespaces = "namespaces"
	SectionFilesystem = "filesystem"
	// SectionFull is the whole report, as a snapshot prints it.
	SectionFull = "full"
)

// Sections lists every name --section accepts.
var Sections = []string{SectionCgroup, SectionProcesses, SectionNamespaces, SectionFilesystem, SectionFull}

// watchSections is what a watch on a terminal shows unless told otherwise:
// what changes while a container runs, within 80×24.
var watchSections = []string{SectionCgroup, SectionProcesses, SectionNamespaces}

// UnknownSectionError is a --section name that is not one of Sections.
type UnknownSectionError struct{ Name string }

func (e *UnknownSectionError) Error() string {
	return fmt.Sprintf("section %q: not one of %s", e.Name, strings.Join(Sections, ", "))
}

// CheckSections returns an *UnknownSectionError for the first name that is
// not a section.
func CheckSections(names []string) error {
	for _, n := range names {
		if !contains(Sections, n) {
			return &UnknownSectionError{Name: n}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// defaultHeight is the screen the compact view is made to fit when the
// terminal does not say: the 80×24 every terminal can show.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// WriteCompact renders the chosen sections of a report, one short line per
// fact, so that a watch redraws within one screen: at most height-1 lines
// (the cursor keeps the last) and width columns, including the one line
// of header the watch puts above it.
func WriteCompact(o *ui.IO, r *Report, sections []string, height int) {
	width := o.Width
	if width <= 0 {
		width = defaultWidth
	}
	if height <= 0 {
		height = defaultHeight
	}
	var lines []string
	add := func(s string) { lines = append(lines, s) }
	t := r.Target
	title := fmt.Sprintf("PID %d: %s", t.PID, t.Command)
	if t.Name != "" {
		title = fmt.Sprintf("%s (host PID %d): %s", t.Name, t.PID, t.Command)
	}
	add(o.Bold(title))
	if r.Exited {
		add(o.Yellow("It exited while it was being read."))
	}
	var procs []string // the process lines, fitted last to the space left
	procAt := -1
	for _, s := range sections {
		switch s {
		case SectionCgroup:
			for _, l := range compactCgroup(o, r) {
				add(l)
			}
		case SectionProcesses:
			pr := r.Processes
			if pr.SharedWithHost {
				add(o.Bold(fmt.Sprintf("Processes: %d, the host's own PID namespace", pr.HostCount)))
			} else {
				add(o.Bold(fmt.Sprintf("Processes: %d in its PID namespace (the host sees %d)", pr.ContainerCount, pr.HostCount)))
			}
			procAt = len(lines)
			for _, p := range pr.List {
				if p.Exited {
					procs = append(procs, fmt.Sprintf("  host %-7d %s", p.HostPID, o.Yellow("(exited)")))
					continue
				}
				procs = append(procs, fmt.Sprintf("  %-5d host %-7d %s", p.PID, p.HostPID, p.Command))
			}
		case SectionNamespaces:
			iso := 0
			for _, n := range r.Namespaces {
				if n.Isolated {
					iso++
				}
			}
			add(o.Bold(fmt.Sprintf("Namespaces: %d of %d isolated", iso, len(r.Namespaces))))
			for _, n := range r.Namespaces {
				state := o.Faint("shared with host")
				switch {
				case n.Inode == 0 || n.HostInode == 0:
					state = "?"
				case n.Isolated:
					state = o.Green("isolated")
				}
				add(fmt.Sprintf("  %-6s  %s%s  %s", n.Type, state, strings.Repeat(" ", max(0, 16-ui.Width(state))), inode(n.Inode)))
			}
		case SectionFilesystem:
			fsys := r.Filesystem
			add(o.Bold(fmt.Sprintf("Filesystem: %d mounts (the host has %d), hostname %s", fsys.MountCount, fsys.HostMountCount, fsys.Hostname)))
			add("  root " + fsys.Root)
		}
	}
	if procAt >= 0 {
		room := height - 2 - len(lines) // the watch's header, the cursor's line
		switch {
		case room <= 0:
			procs = nil // the heading has the count
		case len(procs) > room:
			keep := room - 1
			procs = append(procs[:keep:keep], fmt.Sprintf("  … and %d more", len(procs)-keep))
		}
		lines = append(lines[:procAt], append(procs, lines[procAt:]...)...)
	}
	for _, l := range lines {
		o.Say(fitLine(l, width))
	}
}

// compactCgroup is the cgroup in a few lines: its path, then each key file
// with its value, the counters as the kernel writes them.
func compactCgroup(o *ui.IO, r *Report) []string {
	c := r.Cgroup
	if c == nil {
		return []string{o.Bold("cgroup: not read") + " (no memory controller, or it exited)"}
	}
	out := []string{o.Bold(fmt.Sprintf("cgroup %s (memory, cgroup v%d)", c.HostPath, c.Version))}
	wide := 0
	for _, f := range c.Files {
		wide = max(wide, len(f.Name))
	}
	counted := c.Limits != nil && c.Limits.PidsCurrent >= 0
	for _, f := range c.Files {
		if counted && (f.Name == "tasks" || f.Name == "cgroup.procs") {
			continue // the limits line counts them
		}
		v := flat(f.Value)
		if f.Human != "" && f.Human != f.Value {
			v = f.Human
			if f.Bytes != nil {
				v = fmt.Sprintf("%s (%s)", f.Human, f.Value)
			}
		}
		out = append(out, fmt.Sprintf("  %-*s  %s", wide, f.Name, v))
	}
	// One line for Part 2's limits and privileges: the frame has no room
	// for more on 80×24.
	var more []string
	if l := c.Limits; l != nil {
		tasks, cpu := "tasks no limit", "CPU no limit"
		if l.PidsMax >= 0 {
			tasks = fmt.Sprintf("tasks %d/%d (%d refused)", max(l.PidsCurrent, 0), l.PidsMax, max(l.PidsDenied, 0))
		}
		if l.CPUQuotaUsec >= 0 {
			cpu = fmt.Sprintf("CPU %s (%d throttled)", cpuShare(l.CPUQuotaUsec, l.CPUPeriodUsec), max(l.NrThrottled, 0))
		}
		more = append(more, tasks, cpu)
	}
	if p := r.Privileges; p != nil {
		more = append(more, "caps "+shortCaps(p))
	}
	if len(more) > 0 {
		out = append(out, fmt.Sprintf("  %-*s  %s", wide, "limits", strings.Join(more, "; ")))
	}
	return out
}

// fitLine cuts a line to width visible columns.
func fitLine(s string, width int) string {
	if ui.Width(s) <= width {
		return s
	}
	return ui.Cut(s, width)
}

// shortCaps is the effective set in a word or two, and what else holds it.
func shortCaps(p *Privileges) string {
	s := map[string]string{"every capability of root": "all", "runc's default set": "runc's 3", "none": "none"}[p.Summary]
	if s == "" {
		s = strconv.Itoa(len(p.Effective))
	}
	if p.NoNewPrivs {
		s += ", nnp"
	}
	if p.Seccomp == 2 {
		s += ", seccomp"
	}
	return s
}
