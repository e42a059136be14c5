package inspect

import (
	"cmp"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/proc"
)

// Overview is every namespace on the host, grouped as lsns groups them.
type Overview struct {
	Time       time.Time `json:"time"`
	Host       HostInfo  `json:"host"`
	Namespaces []NSGroup `json:"namespaces"`
	// Unreadable counts the processes whose namespaces could not be read.
	Unreadable int `json:"unreadable"`
	// Zombies counts the processes that have exited but not yet been
	// reaped: each is counted only in its pid and user namespaces, the
	// others the kernel has already released (lsns counts them so too).
	Zombies int `json:"zombies"`
}

// NSGroup is one namespace and the processes in it.
type NSGroup struct {
	Inode   uint64 `json:"inode"`
	Type    string `json:"type"`
	NProcs  int    `json:"nprocs"`
	PID     int    `json:"pid"`     // the lowest PID in it
	Command string `json:"command"` // that process's command
	Host    bool   `json:"host"`    // one of the host's own namespaces
	// LabContainer names the lab containers whose payload made this
	// namespace (comma-separated); "" for the host's and other namespaces.
	LabContainer string `json:"lab_container"`
}

type nsKey struct {
	typ   string
	inode uint64
}

// HostOverview reads the namespaces of every process on the host.
func HostOverview(src Sources) (*Overview, error) {
	return overview(src.Proc, src)
}

func overview(p procfs, src Sources) (*Overview, error) {
	ref, refNS, note, err := hostRef(p)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Time: src.now(), Namespaces: []NSGroup{},
		Host: HostInfo{PID: ref, Note: note, Hostname: src.hostname(), CgroupLayout: string(src.Cgroups.Layout)}}
	pids, err := p.PIDs()
	if err != nil {
		return nil, err
	}
	groups := map[nsKey]*NSGroup{}
	labs := map[nsKey][]string{}
	for _, q := range pids {
		ns, err := refNS, error(nil)
		if q != ref {
			ns, err = memberships(p, q)
		}
		switch {
		case err != nil && (gone(err) || ended(p, q, 0)):
			continue
		case errors.Is(err, fs.ErrPermission):
			ov.Host.Processes++
			ov.Unreadable++
			continue
		case err != nil:
			return nil, err
		}
		ov.Host.Processes++
		if len(ns) < len(refNS) {
			if st, err := p.State(q); err == nil && st == "Z" {
				ov.Zombies++
			}
		}
		l, isLab := src.lab(q)
		for t, ino := range ns {
			k := nsKey{t, ino}
			g := groups[k]
			if g == nil {
				g = &NSGroup{Inode: ino, Type: t, PID: q, Host: ino == refNS[t]}
				groups[k] = g
			}
			g.NProcs++
			g.PID = min(g.PID, q)
			if isLab && !g.Host && !slices.Contains(labs[k], l.Name) {
				labs[k] = append(labs[k], l.Name)
			}
		}
	}
	cmds := map[int]string{}
	for k, g := range groups {
		c, ok := cmds[g.PID]
		if !ok {
			c, err = p.Cmdline(g.PID)
			if err != nil {
				c = "(exited)"
			}
			cmds[g.PID] = c
		}
		g.Command = c
		slices.Sort(labs[k])
		g.LabContainer = strings.Join(labs[k], ",")
		ov.Namespaces = append(ov.Namespaces, *g)
	}
	slices.SortFunc(ov.Namespaces, func(a, b NSGroup) int {
		return cmp.Or(cmp.Compare(a.Inode, b.Inode), cmp.Compare(a.Type, b.Type))
	})
	if hm, err := mount.Read(p.Path(ref, "mountinfo")); err == nil {
		ov.Host.Mounts = len(hm)
	}
	return ov, nil
}

// memberships reads the namespaces process pid is in, as lsns does: a link
// that leads nowhere is left out, not an error. A zombie's do, but for its
// pid and user ones (the kernel releases the others at exit, and keeps its
// PID and credentials until it is reaped); a process gone altogether has
// none left, and is gone.
func memberships(p procfs, pid int) (nsSet, error) {
	s := make(nsSet, len(proc.NSTypes))
	var last error
	for _, t := range proc.NSTypes {
		ino, err := p.NS(pid, t)
		switch {
		case errors.Is(err, proc.ErrNoNamespace):
			continue
		case err != nil && gone(err):
			last = err
			continue
		case err != nil:
			return nil, err
		}
		s[t] = ino
	}
	if len(s) == 0 && last != nil {
		return nil, last
	}
	return s, nil
}
