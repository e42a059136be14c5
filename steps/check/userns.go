package check

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/ui"
)

// idMap is one line of uid_map or gid_map: inside outside count.
type idMap struct{ inside, outside, count int }

func readMap(p string) ([]idMap, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var out []idMap
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		var m idMap
		var e1, e2, e3 error
		m.inside, e1 = strconv.Atoi(f[0])
		m.outside, e2 = strconv.Atoi(f[1])
		m.count, e3 = strconv.Atoi(f[2])
		if e1 == nil && e2 == nil && e3 == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// rootOf is what uid 0 inside is outside, or -1 when 0 is not mapped.
func rootOf(ms []idMap) int {
	for _, m := range ms {
		if m.inside == 0 && m.count > 0 {
			return m.outside
		}
	}
	return -1
}

func formatMap(ms []idMap) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%d %d %d", m.inside, m.outside, m.count))
	}
	return strings.Join(s, ", ")
}

// userNS is a process in a user namespace other than the checker's, with
// its maps.
type userNS struct {
	nsProcess
	uids, gids []idMap
}

// otherUserNS lists the user namespaces processes are in but the
// checker's, one process each (the lowest PID), with their maps.
func otherUserNS(e Env) (string, []userNS, error) {
	own, nss, err := otherNamespaces(e, "user")
	out := make([]userNS, len(nss))
	for i, n := range nss {
		p := strconv.Itoa(n.pid)
		out[i].nsProcess = n
		out[i].uids, _ = readMap(e.proc(p, "uid_map"))
		out[i].gids, _ = readMap(e.proc(p, "gid_map"))
	}
	return own, out, err
}

// hostUID is the real uid of pid as the checker sees it.
func hostUID(e Env, pid int) (int, error) {
	b, err := os.ReadFile(e.proc(strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no Uid line in /proc/%d/status", pid)
}

const hintUserNS = "in the page's root shell (sudo bash), start a container that waits, and check while it runs: unshare --user --pid --mount --uts --fork sleep 1000 &"

// UserNS checks a user namespace made by hand: a process in one of its
// own, a uid_map and a gid_map that make root inside another user outside,
// and the process running as that user.
func UserNS(e Env) []Item {
	const nsName, uidName, gidName, asName = "user namespace", "uid_map", "gid_map", "root inside"
	rest := func(items []Item, names ...string) []Item {
		for _, n := range names {
			items = append(items, skipped(n))
		}
		return items
	}
	own, others, err := otherUserNS(e)
	if err != nil {
		return rest([]Item{{nsName, ui.Fail, "this kernel has no user namespaces: " + err.Error(),
			"use a kernel built with CONFIG_USER_NS, e.g. the workshop's VM (docs/vm.md)"}}, uidName, gidName, asName)
	}
	if len(others) == 0 {
		if it, ok := stepRan(e, nsName, "userns", "its containers showed root inside as nobody outside", hintUserNS); ok {
			return []Item{it}
		}
		return rest([]Item{{nsName, ui.Fail, fmt.Sprintf("every process is in this one (%s): none in a user namespace of its own", own), hintUserNS}},
			uidName, gidName, asName)
	}
	// The one made by hand: root mapped to someone else; else the newest.
	n := others[len(others)-1]
	for _, o := range others {
		if r := rootOf(o.uids); r > 0 {
			n = o
			break
		}
	}
	// The container's first process, not the unshare that made it.
	c := n.inner(e)
	items := []Item{{nsName, ui.OK, fmt.Sprintf("PID %d (%s): %s, not this one's", c, comm(e, c), n.id), ""}}
	hint := func(file string) string {
		return fmt.Sprintf("echo '0 65534 1' | sudo tee /proc/%d/%s", c, file)
	}
	// A map is written once: a wrong one is mended only by a new
	// namespace, with its own PID.
	again := func(file string) string {
		return fmt.Sprintf("a map is written once, so end this one (sudo kill -9 %d), start a new one as the page does, in its root shell (unshare --user --pid --mount --uts --fork sleep 1000 &), and write the new sleep's %s: echo '0 65534 1' > /proc/$(pgrep -P $!)/%s", c, file, file)
	}
	switch r := rootOf(n.uids); {
	case len(n.uids) == 0:
		items = append(items, Item{uidName, ui.Fail, "empty: no uid exists inside yet (every one shows as 65534, nobody, there)", hint("uid_map")})
		return rest(items, gidName, asName)
	case r == 0:
		items = append(items, Item{uidName, ui.Fail, formatMap(n.uids) + ": root inside is root outside", again("uid_map")})
		return rest(items, gidName, asName)
	case r < 0:
		items = append(items, Item{uidName, ui.Fail, formatMap(n.uids) + ": uid 0 is not mapped, so there is no root inside", again("uid_map")})
		return rest(items, gidName, asName)
	default:
		items = append(items, Item{uidName, ui.OK, fmt.Sprintf("%s: uid 0 inside is %d outside", formatMap(n.uids), r), ""})
	}
	switch g := rootOf(n.gids); {
	case len(n.gids) == 0:
		items = append(items, Item{gidName, ui.Fail, "empty: no group exists inside yet",
			fmt.Sprintf("echo deny | sudo tee /proc/%d/setgroups; %s", c, hint("gid_map"))})
		return rest(items, asName)
	case g <= 0:
		items = append(items, Item{gidName, ui.Fail, formatMap(n.gids) + ": group 0 inside is not an unprivileged group outside", again("gid_map")})
		return rest(items, asName)
	default:
		items = append(items, Item{gidName, ui.OK, fmt.Sprintf("%s: gid 0 inside is %d outside", formatMap(n.gids), g), ""})
	}
	// The first process may have started before the map, and keeps the
	// host uid it had; a process of the namespace that runs as the mapped
	// root (one that nsenter -S 0 started after the map) is root inside.
	r := rootOf(n.uids)
	first, err := hostUID(e, c)
	root := 0
	for _, p := range n.pids {
		if u, err := hostUID(e, p); err == nil && u == r {
			root = p
			break
		}
	}
	switch {
	case root != 0:
		items = append(items, Item{asName, ui.OK, fmt.Sprintf("PID %d (%s) runs as uid %d on the host, and as 0 inside", root, comm(e, root), r), ""})
	case err != nil:
		items = append(items, Item{asName, ui.Fail, err.Error(), needRoot})
	default:
		items = append(items, Item{asName, ui.Fail, fmt.Sprintf("PID %d runs as host uid %d, which the map does not make 0: it started before the map, as nobody inside, and no process in the namespace runs as %d", c, first, r),
			fmt.Sprintf("a process entered now is root inside and %d outside: sudo nsenter -t %d -U -m -u -p -S 0 -G 0 sleep 1000 &", r, c)})
	}
	return items
}
