package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// HostPrefix starts the name of every veth host end underhood makes; only
// such a veth is ever removed by a cleanup.
const HostPrefix = "uh-"

// Link is an interface as ip link and ip addr show it.
type Link struct {
	Index int
	Name  string
	Kind  string // veth, …; "" for lo and physical devices
	Up    bool   // IFF_UP: the administrative state
	// Peer is a veth's other end, by its index in the namespace it is in
	// (IFLA_LINK); 0 when there is none.
	Peer  int
	Addrs []netip.Prefix
}

func (l Link) String() string {
	state := "DOWN"
	if l.Up {
		state = "UP"
	}
	var a []string
	for _, p := range l.Addrs {
		a = append(a, p.String())
	}
	s := fmt.Sprintf("%s %s", l.Name, state)
	if len(a) > 0 {
		s += " " + strings.Join(a, " ")
	}
	return s
}

// Veth is a veth pair: two virtual ethernet ends joined like a cable, Host
// in the host's namespace and Peer in the container's.
type Veth struct {
	Host, Peer         string       // interface names, at most 15 bytes
	HostAddr, PeerAddr netip.Prefix // e.g. 10.200.7.1/30 and 10.200.7.2/30
}

// Connect makes the pair: in host's namespace (nil: the caller's own) a
// veth whose peer is created directly in the namespace of process pid,
// both ends addressed and up, and the container's lo up too. What it sends
// is ip(8)'s 'link add … type veth peer … netns', 'addr add' and 'link set
// up'. When the container's namespace goes, the pair goes with it.
func Connect(host *os.File, pid int, v Veth) error {
	cns, err := Of(pid)
	if err != nil {
		return err
	}
	defer cns.Close()
	err = in(host, func(c *conn) error {
		// RTM_NEWLINK: ifinfomsg, IFLA_IFNAME, IFLA_LINKINFO { IFLA_INFO_KIND
		// "veth", IFLA_INFO_DATA { VETH_INFO_PEER { ifinfomsg, IFLA_IFNAME,
		// IFLA_NET_NS_FD } } }
		peer := attr(vethInfoPeer, ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr(v.Peer)),
			attr(unix.IFLA_NET_NS_FD, u32(uint32(cns.Fd()))))
		body := slices.Concat(ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr(v.Host)),
			attr(unix.IFLA_LINKINFO, attr(unix.IFLA_INFO_KIND, cstr("veth")), attr(unix.IFLA_INFO_DATA, peer)))
		if _, err := c.request(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
			return fmt.Errorf("create veth %s with peer %s in the network namespace of %d: %w", v.Host, v.Peer, pid, vethErr(err))
		}
		return c.configure(v.Host, v.HostAddr)
	})
	if err != nil {
		return err
	}
	return in(cns, func(c *conn) error {
		if err := c.configure("lo", netip.Prefix{}); err != nil {
			return err
		}
		return c.configure(v.Peer, v.PeerAddr)
	})
}

// Up brings the interface called name up in ns (nil: the caller's own):
// ip link set NAME up.
func Up(ns *os.File, name string) error {
	return in(ns, func(c *conn) error { return c.configure(name, netip.Prefix{}) })
}

// ErrNoVeth means the kernel cannot make veth pairs: no CONFIG_VETH, or
// the module cannot be loaded.
var ErrNoVeth = errors.New("this kernel has no veth driver (CONFIG_VETH): try sudo modprobe veth")

func vethErr(err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w (%v)", ErrNoVeth, err)
	}
	return err
}

// VethSupported makes a veth pair in a network namespace of its own and
// removes it with the namespace: nil when the kernel can, else why not.
var VethSupported = sync.OnceValue(func() error {
	ns, err := New()
	if err != nil {
		return err
	}
	defer ns.Close()
	return in(ns, func(c *conn) error {
		peer := attr(vethInfoPeer, ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr("probe1")))
		body := slices.Concat(ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr("probe0")),
			attr(unix.IFLA_LINKINFO, attr(unix.IFLA_INFO_KIND, cstr("veth")), attr(unix.IFLA_INFO_DATA, peer)))
		_, err := c.request(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
		return vethErr(err)
	})
})

// Delete removes the interface called name in ns (nil: the caller's own);
// one that is not there is no error. Removing either end of a veth pair
// removes both.
func Delete(ns *os.File, name string) error {
	return in(ns, func(c *conn) error {
		_, err := c.request(unix.RTM_DELLINK, 0, slices.Concat(ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr(name))))
		if errors.Is(err, unix.ENODEV) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete interface %s: %w", name, err)
		}
		return nil
	})
}

// Links lists the interfaces of ns (nil: the caller's own), with their
// IPv4 addresses: ip link and ip -4 addr in one.
func Links(ns *os.File) ([]Link, error) {
	var out []Link
	err := in(ns, func(c *conn) error {
		msgs, err := c.request(unix.RTM_GETLINK, unix.NLM_F_DUMP, ifinfomsg(0, 0, 0))
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
				continue
			}
			l := Link{Index: int(int32(binary.NativeEndian.Uint32(m.Data[4:]))),
				Up: binary.NativeEndian.Uint32(m.Data[8:])&unix.IFF_UP != 0}
			a := parseAttrs(m.Data[unix.SizeofIfInfomsg:])
			l.Name = strings.TrimRight(string(a[unix.IFLA_IFNAME]), "\x00")
			if p := a[unix.IFLA_LINK]; len(p) == 4 {
				l.Peer = int(binary.NativeEndian.Uint32(p))
			}
			if li, ok := a[unix.IFLA_LINKINFO]; ok {
				l.Kind = strings.TrimRight(string(parseAttrs(li)[unix.IFLA_INFO_KIND]), "\x00")
			}
			out = append(out, l)
		}
		msgs, err = c.request(unix.RTM_GETADDR, unix.NLM_F_DUMP, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0})
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
				continue
			}
			bits, index := int(m.Data[1]), int(binary.NativeEndian.Uint32(m.Data[4:]))
			a := parseAttrs(m.Data[unix.SizeofIfAddrmsg:])
			ip, ok := netip.AddrFromSlice(a[unix.IFA_LOCAL])
			if !ok {
				continue
			}
			for i := range out {
				if out[i].Index == index {
					out[i].Addrs = append(out[i].Addrs, netip.PrefixFrom(ip, bits))
				}
			}
		}
		return nil
	})
	return out, err
}

// Routes lists the destinations of the IPv4 routes of ns (nil: the
// caller's own), every table, as ip -4 route show table all.
func Routes(ns *os.File) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := in(ns, func(c *conn) error {
		msgs, err := c.request(unix.RTM_GETROUTE, unix.NLM_F_DUMP, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
				continue
			}
			dst := netip.IPv4Unspecified()
			if ip, ok := netip.AddrFromSlice(parseAttrs(m.Data[unix.SizeofRtMsg:])[unix.RTA_DST]); ok {
				dst = ip
			}
			out = append(out, netip.PrefixFrom(dst, int(m.Data[1])))
		}
		return nil
	})
	return out, err
}

// Base is the range the lab's veth pairs take their /30 from.
var Base = netip.MustParsePrefix("10.200.0.0/16")

// Pick chooses a /30 of Base that overlaps no route and no address of ns
// (nil: the caller's own) other than a default route, and returns its two
// usable addresses: .1 for the host's end, .2 for the container's.
func Pick(ns *os.File) (host, peer netip.Prefix, err error) {
	routes, err := Routes(ns)
	if err != nil {
		return host, peer, err
	}
	links, err := Links(ns)
	if err != nil {
		return host, peer, err
	}
	for _, l := range links {
		routes = append(routes, l.Addrs...)
	}
	return pickFrom(routes, rand.IntN(1<<14))
}

// pickFrom is Pick's choice, from start on, against the prefixes taken.
func pickFrom(taken []netip.Prefix, start int) (host, peer netip.Prefix, err error) {
	base := Base.Addr().As4()
	for i := range 1 << 14 { // the /30s of a /16
		n := (start + i) % (1 << 14)
		a := base
		a[2], a[3] = byte(n>>6), byte(n&63)*4
		net := netip.PrefixFrom(netip.AddrFrom4(a), 30)
		free := true
		for _, t := range taken {
			if t.Bits() > 0 && t.Overlaps(net) {
				free = false
				break
			}
		}
		if free {
			a[3]++
			h := netip.PrefixFrom(netip.AddrFrom4(a), 30)
			a[3]++
			return h, netip.PrefixFrom(netip.AddrFrom4(a), 30), nil
		}
	}
	return host, peer, fmt.Errorf("no free /30 in %s: every one overlaps a route of this machine", Base)
}

// in runs f with a netlink socket in ns (nil: the caller's own).
func in(ns *os.File, f func(*conn) error) error {
	open := func() error {
		c, err := dial()
		if err != nil {
			return err
		}
		defer c.Close()
		return f(c)
	}
	if ns == nil {
		return open()
	}
	var c *conn
	if err := Do(ns, func() (err error) { c, err = dial(); return err }); err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// configure gives the link called name its address (when p is valid) and
// brings it up: ip addr add P dev NAME; ip link set NAME up.
func (c *conn) configure(name string, p netip.Prefix) error {
	msgs, err := c.request(unix.RTM_GETLINK, 0, slices.Concat(ifinfomsg(0, 0, 0), attr(unix.IFLA_IFNAME, cstr(name))))
	if err != nil || len(msgs) == 0 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		return fmt.Errorf("find interface %s: %v", name, err)
	}
	index := int32(binary.NativeEndian.Uint32(msgs[0].Data[4:]))
	if p.IsValid() {
		ip := p.Addr().AsSlice()
		body := slices.Concat(ifaddrmsg(p, index), attr(unix.IFA_LOCAL, ip), attr(unix.IFA_ADDRESS, ip))
		if _, err := c.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, name, err)
		}
	}
	if _, err := c.request(unix.RTM_NEWLINK, 0, ifinfomsg(index, unix.IFF_UP, unix.IFF_UP)); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}
