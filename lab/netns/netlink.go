// Package netns gives a container a network: network namespaces, and a
// veth pair between the host's and the container's, made with netlink
// messages written by hand (RTM_NEWLINK, RTM_NEWADDR), as ip(8) sends them.
package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// vethInfoPeer is VETH_INFO_PEER of linux/veth.h (not in x/sys): the
// attribute of a new veth that describes its other end.
const vethInfoPeer = 1

// conn is a NETLINK_ROUTE socket. A socket belongs to the network namespace
// of the thread that made it, for as long as it lives: that is how
// underhood talks to the container's namespace from the outside.
type conn struct {
	fd  int
	seq uint32
}

func dial() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_NETLINK, NETLINK_ROUTE): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	// The kernel answers at once; a receive timeout makes sure no call hangs.
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &conn{fd: fd}, nil
}

func (c *conn) Close() error { return unix.Close(c.fd) }

// request sends one message (header, then body) and collects the kernel's
// answers up to its acknowledgement, or up to NLMSG_DONE for a dump.
func (c *conn) request(typ, flags uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	c.seq++
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(body)))   // nlmsg_len
	ne.PutUint16(b[4:], typ)                                     // nlmsg_type
	ne.PutUint16(b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK) // nlmsg_flags
	ne.PutUint32(b[8:], c.seq)                                   // nlmsg_seq; nlmsg_pid 0 = the kernel
	b = append(b, body...)
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send netlink message: %w", err)
	}
	var out []syscall.NetlinkMessage
	for {
		// A fresh buffer each time: the messages kept point into it.
		buf := make([]byte, 1<<16)
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("receive netlink answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parse netlink answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				// struct nlmsgerr: a negative errno, 0 for the acknowledgement.
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error message")
				}
				if e := int32(ne.Uint32(m.Data)); e != 0 {
					return nil, unix.Errno(-e)
				}
				return out, nil
			}
			out = append(out, m)
		}
	}
}

// attr is one route attribute (struct rtattr: length, type, then the data,
// padded to four bytes).
func attr(typ uint16, data ...[]byte) []byte {
	var payload []byte
	for _, d := range data {
		payload = append(payload, d...)
	}
	l := unix.SizeofRtAttr + len(payload)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], payload)
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// ifinfomsg is struct ifinfomsg, the head of every link message.
func ifinfomsg(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg) // family AF_UNSPEC, type 0
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// ifaddrmsg is struct ifaddrmsg, the head of every address message.
func ifaddrmsg(p netip.Prefix, index int32) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0] = unix.AF_INET
	b[1] = uint8(p.Bits())
	b[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

// parseAttrs reads a run of route attributes (a nested attribute's data).
func parseAttrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ unix.NLA_F_NESTED
		if l < unix.SizeofRtAttr || l > len(b) {
			break
		}
		out[typ] = b[unix.SizeofRtAttr:l]
		b = b[min((l+3)&^3, len(b)):]
	}
	return out
}
