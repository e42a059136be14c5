package netns

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/netns/nettest"
)

func TestPickFrom(t *testing.T) {
	taken := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),      // a default route takes nothing
		netip.MustParsePrefix("10.200.0.0/29"),  // the first two /30s
		netip.MustParsePrefix("192.168.1.0/24"), // elsewhere
	}
	h, p, err := pickFrom(taken, 0)
	if err != nil || h.String() != "10.200.0.9/30" || p.String() != "10.200.0.10/30" {
		t.Errorf("pickFrom = %v %v %v, want 10.200.0.9/30 10.200.0.10/30", h, p, err)
	}
	h, _, _ = pickFrom(nil, 1<<14-1)
	if h.String() != "10.200.255.253/30" {
		t.Errorf("last /30: %v", h)
	}
	if _, _, err := pickFrom([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 5); err == nil {
		t.Error("a /8 over the whole range: no error")
	}
}

func TestAttrIsPadded(t *testing.T) {
	a := attr(unix.IFLA_IFNAME, cstr("eth0"))
	if len(a) != 12 || a[0] != 9 || a[2] != unix.IFLA_IFNAME {
		t.Errorf("attr = %v, want length 9 padded to 12", a)
	}
	got := parseAttrs(append(a, attr(unix.IFLA_INFO_KIND, cstr("veth"))...))
	if string(got[unix.IFLA_IFNAME]) != "eth0\x00" || string(got[unix.IFLA_INFO_KIND]) != "veth\x00" {
		t.Errorf("parseAttrs = %v", got)
	}
}

// startIn starts cmd in ns (nil: a new network namespace) and ends it by
// PID when the test ends, whatever happened.
func startIn(t *testing.T, ns *os.File, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if ns == nil {
		cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWNET
		err = cmd.Start()
	} else {
		err = Do(ns, cmd.Start)
	}
	if err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("process %d still there 5s after SIGKILL", pid)
		}
	})
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root: network namespaces and veth pairs (CI runs as root)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("requires /bin/busybox (busybox-static)")
	}
	if err := VethSupported(); err != nil {
		t.Skipf("requires veth pairs: %v", err)
	}
}

// The whole scenario in namespaces the test makes: a stand-in for the host
// and a container, a veth pair between them, traffic across it; nothing of
// the machine's network changes, nothing is left.
func TestVethBetweenTwoNamespaces(t *testing.T) {
	needRoot(t)
	before := nettest.Take(t)
	host, err := New()
	if err != nil {
		t.Fatal(err)
	}
	hostID, _ := ID(host)
	defer func() {
		host.Close()
		nettest.Gone(t, hostID)
		nettest.Unchanged(t, before)
	}()
	if err := in(host, func(c *conn) error { return c.configure("lo", netip.Prefix{}) }); err != nil {
		t.Fatal(err)
	}

	box := exec.Command("/bin/busybox", "sleep", "60")
	startIn(t, nil, box)
	cns, err := Of(box.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer cns.Close()
	boxID, _ := ID(cns)
	defer nettest.Gone(t, boxID)

	links, err := Links(cns)
	if err != nil || len(links) != 1 || links[0].String() != "lo DOWN" {
		t.Fatalf("a new network namespace: %v %v, want only lo, down", links, err)
	}

	hostAddr, peerAddr, err := Pick(host)
	if err != nil {
		t.Fatal(err)
	}
	v := Veth{Host: "uh-test0", Peer: "eth0", HostAddr: hostAddr, PeerAddr: peerAddr}
	if err := Connect(host, box.Process.Pid, v); err != nil {
		t.Fatal(err)
	}
	hl, _ := Links(host)
	cl, _ := Links(cns)
	if !has(hl, "uh-test0 UP "+hostAddr.String(), "veth") || !has(cl, "eth0 UP "+peerAddr.String(), "veth") || !has(cl, "lo UP 127.0.0.1/8", "") {
		t.Fatalf("after Connect:\n host: %v\n container: %v", hl, cl)
	}

	// ping, both ways
	for _, p := range []struct {
		ns *os.File
		to netip.Addr
	}{{cns, hostAddr.Addr()}, {host, peerAddr.Addr()}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := runIn(ctx, p.ns, "/bin/busybox", "ping", "-c", "1", "-W", "3", p.to.String())
		cancel()
		if err != nil || !strings.Contains(out, "1 packets received") {
			t.Errorf("ping %s: %v\n%s", p.to, err, out)
		}
	}
	// TCP, both ways: a listener on one end, a client on the other
	for _, p := range []struct {
		server, client *os.File
		addr           netip.Addr
	}{{cns, host, peerAddr.Addr()}, {host, cns, hostAddr.Addr()}} {
		if got := echo(t, p.server, p.client, p.addr.String()); got != "hello" {
			t.Errorf("echo on %s: %q", p.addr, got)
		}
	}
	// The host's loopback is not the container's.
	var ln net.Listener
	if err := Do(host, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Do(cns, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("the container dialled the host's %s: %v, want connection refused", ln.Addr(), err)
	}

	// The container's namespace goes, and the pair with it.
	_ = box.Process.Kill()
	cns.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hl, _ = Links(host)
		if !has(hl, "uh-test0", "") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host's end outlived the container: %v", hl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := Delete(host, "uh-test0"); err != nil {
		t.Errorf("Delete of a gone interface: %v", err)
	}
}

func has(ls []Link, prefix, kind string) bool {
	for _, l := range ls {
		if strings.HasPrefix(l.String(), prefix) && (kind == "" || l.Kind == kind) {
			return true
		}
	}
	return false
}

// runIn runs a command in ns, ended by its context's deadline.
func runIn(ctx context.Context, ns *os.File, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := Do(ns, cmd.Run)
	return out.String(), err
}

// echo listens on addr in server's namespace and sends "hello" from
// client's, returning what came back.
func echo(t *testing.T, server, client *os.File, addr string) string {
	var ln net.Listener
	if err := Do(server, func() (err error) { ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0")); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte(l))
	}()
	var got string
	err := Do(client, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return err
		}
		got, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		t.Errorf("echo to %s: %v", ln.Addr(), err)
	}
	return strings.TrimSpace(got)
}
