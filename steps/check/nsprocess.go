package check

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// nsProcess is a namespace other than the checker's, and the first
// process (the lowest PID) in it.
type nsProcess struct {
	id   string // TYPE:[INODE], as readlink shows it
	pid  int
	comm string
	pids []int // every process in it, lowest first
}

// otherNamespaces lists the namespaces of type typ (net, user, …) that
// processes are in, but the checker's own, each by its first process,
// lowest PID first: readlink /proc/PID/ns/TYPE for every PID.
func otherNamespaces(e Env, typ string) (own string, out []nsProcess, err error) {
	own, err = os.Readlink(e.proc("self", "ns", typ))
	if err != nil {
		return "", nil, err
	}
	links, _ := filepath.Glob(e.proc("[0-9]*", "ns", typ))
	seen := map[string]int{}
	for _, l := range links {
		id, err := os.Readlink(l)
		if err != nil || id == own {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(l))))
		if err != nil {
			continue
		}
		if i, ok := seen[id]; ok {
			out[i].pid = min(out[i].pid, pid)
			out[i].pids = append(out[i].pids, pid)
			continue
		}
		seen[id] = len(out)
		out = append(out, nsProcess{id: id, pid: pid, pids: []int{pid}})
	}
	slices.SortFunc(out, func(a, b nsProcess) int { return a.pid - b.pid })
	for i := range out {
		slices.Sort(out[i].pids)
		out[i].comm = comm(e, out[i].pid)
	}
	return own, out, nil
}

// comm is the command name of process pid, or "" once it is gone.
func comm(e Env, pid int) string {
	c, _ := os.ReadFile(e.proc(strconv.Itoa(pid), "comm"))
	return strings.TrimSpace(string(c))
}

// inner is the process of n that nsenter -p should name: the first one in
// a PID namespace other than the checker's. unshare --user --pid --fork is
// itself in the new user namespace but not in the new PID namespace (only
// its child is), and nsenter -t UNSHARE -p would enter the host's. Without
// such a process (or where the links cannot be read) it is n's first.
func (n nsProcess) inner(e Env) int {
	own, err := os.Readlink(e.proc("self", "ns", "pid"))
	if err != nil {
		return n.pid
	}
	for _, p := range n.pids {
		if id, err := os.Readlink(e.proc(strconv.Itoa(p), "ns", "pid")); err == nil && id != own {
			return p
		}
	}
	return n.pid
}
