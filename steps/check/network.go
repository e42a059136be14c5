package check

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/ui"
)

// Links lists the interfaces of the network namespace of process pid, or
// of the checker's own with pid 0.
func Links(pid int) ([]netns.Link, error) {
	if pid == 0 {
		return netns.Links(nil)
	}
	f, err := netns.Of(pid)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return netns.Links(f)
}

// otherNetNS lists the network namespaces processes are in, but the
// checker's own, by their first process.
// otherNetNS is otherNamespaces for net, less the machine's own network
// namespace: checked from the page's stand-in host (unshare -n bash), the
// machine's is another one too, and must never be taken for the
// container's, nor get a veth from a hint.
func otherNetNS(e Env) (string, []nsProcess, error) {
	own, nss, err := otherNamespaces(e, "net")
	var init string
	for _, pid := range []string{"1", "2"} { // systemd, or kthreadd: always in the first one
		if id, err := os.Readlink(e.proc(pid, "ns", "net")); err == nil {
			init = id
			break
		}
	}
	out := nss[:0]
	for _, n := range nss {
		if n.id != init {
			out = append(out, n)
		}
	}
	return own, out, err
}

// ppid is the parent's PID of pid, 0 where it cannot be read.
func ppid(e Env, pid int) int {
	b, err := os.ReadFile(e.proc(strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

const (
	hintUnshare  = "in the page's stand-in host (sudo unshare -n bash) start a container that waits, unshare -n -p -f --mount-proc sleep 1000 &, and check from that shell while it runs (kill -9 its sleep to end it)"
	hintVethAdd  = "sudo ip link add veth-host type veth peer name eth0 netns %d"
	hintPeerAddr = "sudo nsenter -t %[1]d -n ip addr add 10.200.1.2/30 dev %[2]s && sudo nsenter -t %[1]d -n ip link set %[2]s up"
	hintHostAddr = "sudo ip addr add %s dev %s && sudo ip link set %s up"
)

// Network checks a network namespace made by hand and joined to this one
// by a veth pair: a process in a namespace of its own, a veth in it with an
// address and up, its other end here with an address on the same subnet
// and up, lo up inside, and a real ping across.
func Network(e Env) []Item {
	const (
		nsName, inName, hostName, loName, pingName = "network namespace", "veth inside", "host's end", "lo inside", "ping across"
	)
	rest := func(items []Item, names ...string) []Item {
		for _, n := range names {
			items = append(items, skipped(n))
		}
		return items
	}
	if e.Euid != 0 {
		return rest([]Item{{nsName, ui.Fail, "not root: the interfaces of another namespace are for root to read", needRoot}}, inName, hostName, loName, pingName)
	}
	own, others, err := otherNetNS(e)
	if err != nil {
		return rest([]Item{{nsName, ui.Fail, "this kernel has no network namespaces: " + err.Error(),
			"use a kernel built with namespaces, e.g. the workshop's VM (docs/vm.md)"}}, inName, hostName, loName, pingName)
	}
	if len(others) == 0 {
		if it, ok := stepRan(e, nsName, "network", "the namespaces, the pair and its addresses went with them", hintUnshare); ok {
			return []Item{it}
		}
		return rest([]Item{{nsName, ui.Fail, fmt.Sprintf("every process is in this one (%s): none in a namespace of its own", own), hintUnshare}},
			inName, hostName, loName, pingName)
	}
	// The one made by hand is the one with a veth in it; else the newest.
	type found struct {
		ns    nsProcess
		links []netns.Link
	}
	var pick *found
	for _, n := range others {
		ls, err := e.Links(n.pid)
		if err != nil {
			continue
		}
		f := &found{n, ls}
		if slices.ContainsFunc(ls, isVeth) {
			pick = f
			break
		}
		// Without a veth yet, the newest one that a person started: a
		// service's (a child of PID 1, as systemd's PrivateNetwork= makes)
		// is not the container, and must not get a veth from a hint.
		if ppid(e, n.pid) == 1 {
			continue
		}
		if pick == nil || n.pid > pick.ns.pid {
			pick = f
		}
	}
	if pick == nil {
		if it, ok := stepRan(e, nsName, "network", "the namespaces, the pair and its addresses went with them", hintUnshare); ok {
			return []Item{it}
		}
		return rest([]Item{{nsName, ui.Fail, fmt.Sprintf("%d %s besides this one, none of them a container started by hand", len(others), plural(len(others), "namespace", "namespaces")), hintUnshare}},
			inName, hostName, loName, pingName)
	}
	n := pick.ns
	items := []Item{{nsName, ui.OK, fmt.Sprintf("PID %d (%s): %s, not this one's", n.pid, n.comm, n.id), ""}}

	i := slices.IndexFunc(pick.links, isVeth)
	if i < 0 {
		items = append(items, Item{inName, ui.Fail, fmt.Sprintf("PID %d's namespace has only %s", n.pid, names(pick.links)), fmt.Sprintf(hintVethAdd, n.pid)})
		return rest(items, hostName, loName, pingName)
	}
	in := pick.links[i]
	switch {
	case len(in.Addrs) == 0:
		items = append(items, Item{inName, ui.Fail, in.Name + " has no address", fmt.Sprintf(hintPeerAddr, n.pid, in.Name)})
		return rest(items, hostName, loName, pingName)
	case !in.Up:
		items = append(items, Item{inName, ui.Fail, in.Name + " is down", fmt.Sprintf("sudo nsenter -t %d -n ip link set %s up", n.pid, in.Name)})
		return rest(items, hostName, loName, pingName)
	}
	items = append(items, Item{inName, ui.OK, in.String(), ""})

	mine, err := e.Links(0)
	if err != nil {
		items = append(items, Item{hostName, ui.Fail, "cannot list this namespace's interfaces: " + err.Error(), needRoot})
		return rest(items, loName, pingName)
	}
	peer := in.Addrs[0]
	// The other end: the veth here whose peer is the one inside, and back.
	var host *netns.Link
	for k, l := range mine {
		if isVeth(l) && l.Index == in.Peer && l.Peer == in.Index {
			host = &mine[k]
		}
	}
	switch {
	case host == nil:
		items = append(items, Item{hostName, ui.Fail, fmt.Sprintf("the other end of %s is not in this namespace (%s)", in.Name, own),
			"run the check where you ran ip link add (in the stand-in's shell, if you used one)"})
		return rest(items, loName, pingName)
	case !slices.ContainsFunc(host.Addrs, func(a netip.Prefix) bool { return a.Masked() == peer.Masked() }):
		items = append(items, Item{hostName, ui.Fail, fmt.Sprintf("%s has no address in %s", host.Name, peer.Masked()),
			fmt.Sprintf(hintHostAddr, hostSide(peer), host.Name, host.Name)})
		return rest(items, loName, pingName)
	case !host.Up:
		items = append(items, Item{hostName, ui.Fail, host.Name + " is down", "sudo ip link set " + host.Name + " up"})
		return rest(items, loName, pingName)
	}
	items = append(items, Item{hostName, ui.OK, host.String(), ""})

	if j := slices.IndexFunc(pick.links, func(l netns.Link) bool { return l.Name == "lo" }); j < 0 || !pick.links[j].Up {
		items = append(items, Item{loName, ui.Fail, "lo is down: 127.0.0.1 does not answer inside",
			fmt.Sprintf("sudo nsenter -t %d -n ip link set lo up", n.pid)})
	} else {
		items = append(items, Item{loName, ui.OK, "lo is up: 127.0.0.1 answers inside", ""})
	}

	out, err := e.Try(Probe{Kind: TryPing, Path: peer.Addr().String()})
	if err != nil {
		return append(items, Item{pingName, ui.Fail, fmt.Sprintf("ping %s: %v", peer.Addr(), err),
			"both ends up, both addresses in one subnet? ip addr here, and nsenter -t PID -n ip addr inside"})
	}
	return append(items, Item{pingName, ui.OK, out, ""})
}

func isVeth(l netns.Link) bool { return l.Kind == "veth" }

func names(ls []netns.Link) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.String())
	}
	if len(s) == 0 {
		return "no interface"
	}
	return strings.Join(s, ", ")
}

// hostSide suggests the host end's address: the other one of a /30.
func hostSide(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	if p.Bits() == 30 {
		a[3] ^= 3 // .1 <-> .2 in a /30
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// ping sends one ICMP echo to addr from the checker's namespace and waits
// up to two seconds for the reply.
func ping(addr string) (string, error) {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("underhood check")}}
	b, _ := msg.Marshal(nil)
	start := time.Now()
	if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(addr)}); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(start.Add(2 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return "", fmt.Errorf("no answer in 2s (%v)", err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err == nil && m.Type == ipv4.ICMPTypeEchoReply && from.String() == addr {
			return fmt.Sprintf("%s answered in %v", addr, time.Since(start).Round(10*time.Microsecond)), nil
		}
	}
}
