package steps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// The ports of the network step: each in a namespace of the step's own,
// where nothing else listens.
const (
	hostPort = 7007 // the host's end: an echo server, and the same on its 127.0.0.1
	boxPort  = 8080 // the container's nc -l
)

// SharedNetScript shows the network namespace a container is in.
const SharedNetScript = `busybox readlink /proc/self/ns/net
echo "interfaces: $(busybox ip -o link | busybox wc -l)"`

// AloneNetScript is a container in a new network namespace: lo alone, down.
const AloneNetScript = `busybox readlink /proc/self/ns/net
busybox ip link
echo "--- busybox ip link set lo up; busybox ping -c 1 127.0.0.1"
busybox ip link set lo up
busybox ping -c 1 -W 2 127.0.0.1 | busybox grep received`

// vethScript runs in the connected container; host is the host's end.
func vethScript(host netip.Addr) string {
	return fmt.Sprintf(`busybox ip -4 -o addr show eth0 | busybox awk '{print $2, $4}'
busybox ip route
echo "--- busybox ping -c 1 %[1]s   (the host's end)"
busybox ping -c 1 -W 2 %[1]s | busybox grep received
echo "--- echo hello from the container | busybox nc %[1]s %[2]d"
echo "hello from the container" | busybox nc -w 2 %[1]s %[2]d
echo "--- busybox nc 127.0.0.1 %[2]d   (the host's server listens on its 127.0.0.1 too)"
echo hi | busybox nc -w 1 127.0.0.1 %[2]d 2>&1 || echo "nothing: 127.0.0.1 is the container's own loopback"
echo "--- echo hello from inside | busybox nc -l -p %[3]d   (the host connects)"
echo "hello from inside" | busybox nc -w 5 -l -p %[3]d`, host, hostPort, boxPort)
}

func init() {
	register(&Step{Name: "network", Title: "A network of its own: lo, then a veth pair", Part: Beyond, Kind: Container,
		Long: "Three containers: the full one of step 7, which shares the host's network;\n" +
			"one in a new network namespace, with only a loopback that is down; and one\n" +
			"joined by a veth pair to a stand-in for the host (a network namespace the\n" +
			"step makes, so the machine's own network is never touched): ping and TCP\n" +
			"both ways on a private /30. With -- CMD, runs CMD in a connected container.",
		Options:   WithMemory | WithPauses,
		Page:      "12-network.md",
		Code:      []string{"lab/netns/link.go Connect", "lab/netns/netlink.go request", "lab/netns/netns.go New", "lab/container/container.go Run"},
		Ephemeral: true, Done: readyToRun, Run: Network,
		Explain: Explanation{
			What: "Runs the full container three times: sharing the host's network namespace, in a new one (CLONE_NEWNET) where only lo is there, down, and in a new one joined by a veth pair to a stand-in for the host, with an address on each end, a ping and a TCP connection each way.",
			Why: "Without a network namespace, a container sees every interface of the host, listens on the host's ports and reaches every service on the host's 127.0.0.1. " +
				"A new network namespace has its own interfaces, addresses, routes, ports and firewall, and starts with nothing but a loopback. " +
				"A veth pair is a virtual cable: what goes in one end comes out of the other, so with one end in each namespace the two can talk, and only through it.",
			Shell: []string{
				"sudo unshare -n bash                  # a stand-in host: exit undoes it all",
				"unshare -n busybox ip link            # lo, and it is down",
				"unshare -n -p -f --mount-proc sleep 1000 &  # a container that waits",
				"sleep 1; PID=$(pgrep -P $!)           # its sleep: that unshare's child",
				"ip link add veth-host type veth peer name eth0 netns $PID",
				"ip addr add 10.200.1.1/30 dev veth-host; ip link set veth-host up",
				"nsenter -t $PID -n ip addr add 10.200.1.2/30 dev eth0",
				"nsenter -t $PID -n ip link set eth0 up; nsenter -t $PID -n ip link set lo up",
				"busybox ping -c 1 10.200.1.2",
				"kill -9 $PID; exit   # sleep is PID 1: only SIGKILL ends it",
			},
			Syscalls: []string{
				"unshare(CLONE_NEWNET) on a locked thread, then setns back: the stand-in",
				"clone(CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS)",
				"socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) in the stand-in's namespace",
				"RTM_NEWLINK uh-… {kind veth, peer {eth0, IFLA_NET_NS_FD /proc/PID/ns/net}}",
				"RTM_NEWADDR 10.200.x.y/30 on uh-…; RTM_NEWLINK ifi_flags IFF_UP",
				"setns(/proc/PID/ns/net), socket(AF_NETLINK), setns back, and on it:",
				"  RTM_NEWADDR the /30's other address on eth0; eth0 and lo up",
				"the end: the container's namespace goes, and the pair with it",
			},
			Differs: "The host's end of the pair lives in a network namespace the step makes, standing in for the host, so that the lab never adds an interface, an address or a route to the machine (run --net veth puts it in the host's own). " +
				"Docker joins the host ends to a bridge (docker0) and adds NAT so that containers reach the outside; the lab's network is the two ends of its pair, nothing more. " +
				"underhood writes the netlink messages by hand; ip(8) sends the same ones.",
			Observe: "The first container is in the host's net:[…] and lists all its interfaces. The second has only lo, DOWN, until it is brought up. The third has eth0 with its /30, pings the host's end, and talks TCP to it both ways; 127.0.0.1 is still its own. " +
				"What this still does not isolate: root in the container is root on the host (the user namespace), and it shares the host's System V IPC.",
		},
		Check: StepCheck{Run: check.Network, Machine: true, Looks: "a network namespace made by hand: unshare -n, a veth pair, an address on each end",
			Target: func(check.Env) string { return "this machine's network namespaces and veth pairs" },
			ByHand: "make a network namespace and a veth pair by hand as the page shows, and run check while the container runs"},
		Tour: TourStop{About: [2]string{
			"Without a network namespace a container uses the host's interfaces and ports.",
			"A new one has only lo; a veth pair is the cable that joins it to the host.",
		}, Cmd: "sudo underhood network", Demo: (*tour).network},
	})
}

// NetworkSpec is the full container with a network namespace of its own
// joined by a veth pair to host (nil: underhood's own namespace).
func NetworkSpec(name, busyboxPath string, limit int64, cg cgroup.Host, parent string, host *os.File, v netns.Veth) container.Spec {
	s := RunSpec(name, busyboxPath, limit, cg, parent)
	s.Kind = "network"
	s.Clone |= unix.CLONE_NEWNET
	s.Net = &container.Network{Host: host, Veth: v}
	return s
}

// NetModes are the values of run --net.
var NetModes = []string{"host", "none", "veth"}

// ValidNet checks a --net value.
func ValidNet(mode string) error {
	if slices.Contains(NetModes, mode) {
		return nil
	}
	return fmt.Errorf("--net %q: give host (the host's network), none (a namespace with only lo) or veth (a veth pair to the host)", mode)
}

// VethFor names a run's pair: uh-<the run's random part> on the host (at
// most 15 bytes), eth0 in the container, on a /30 that no route of
// underhood's own namespace covers.
func VethFor(name string) (netns.Veth, error) {
	h, p, err := netns.Pick(nil)
	if err != nil {
		return netns.Veth{}, err
	}
	tail := name
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		tail = name[i+1:]
	}
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	return netns.Veth{Host: netns.HostPrefix + tail, Peer: "eth0", HostAddr: h, PeerAddr: p}, nil
}

// Network runs the network step.
func Network(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("network")
	if err := needRoot(s.Name); err != nil {
		return err
	}
	if err := usableBusybox(w); err != nil {
		return err
	}
	cg, err := memoryHost(opt)
	if err != nil {
		return err
	}
	limit := limitOf(opt)
	// The stand-in for the host: its end of the pair, its servers.
	host, err := netns.New()
	if err != nil {
		return fmt.Errorf("make the stand-in host's network namespace: %w", err)
	}
	defer host.Close()
	if err := netns.Up(host, "lo"); err != nil {
		return err
	}
	name := container.RandomName("net")
	v, err := VethFor(name)
	if err != nil {
		return err
	}
	if len(opt.Argv) > 0 {
		return start(o, w, opt, NetworkSpec(name, w.Busybox(), limit, cg, opt.CgroupParent, host, v), nil)
	}
	script := func(spec container.Spec, s string) container.Spec {
		spec.Argv = []string{"/bin/busybox", "sh", "-c", s}
		return spec
	}

	self, _ := netns.Self()
	hostID := "?"
	if self != nil {
		hostID, _ = netns.ID(self)
		self.Close()
	}
	o.Note("%s first the full container of step 7, which shares the host's network namespace (%s):", stepTag(o, s), hostID)
	shared := script(RunSpec(container.RandomName("box"), w.Busybox(), limit, cg, opt.CgroupParent), SharedNetScript)
	shared.Kind = "network"
	var out bytes.Buffer
	if r, err := launchTee(o, w, opt, &shared, &out); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	if ls, err := netns.Links(nil); err == nil {
		o.Note("  the host's own namespace, with all of its %s: a server in this container listens on the host's ports.", plural(int64(len(ls)), "interface", "interfaces"))
	}

	if err := opt.more("a network namespace of its own"); err != nil {
		return err
	}
	o.Note("")
	o.Note("%s then in a network namespace of its own (CLONE_NEWNET):", stepTag(o, s))
	alone := script(RunSpec(container.RandomName("net"), w.Busybox(), limit, cg, opt.CgroupParent), AloneNetScript)
	alone.Kind = "network"
	alone.Clone |= unix.CLONE_NEWNET
	out.Reset()
	if r, err := launchTee(o, w, opt, &alone, &out); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	aloneOK := strings.Contains(out.String(), "lo: <LOOPBACK>") && strings.Count(out.String(), "link/") == 1 &&
		strings.Contains(out.String(), "1 packets received")

	vethErr := netns.VethSupported()
	if vethErr == nil {
		if err := opt.more("joined by a veth pair"); err != nil {
			return err
		}
	}
	o.Note("")
	if err := vethErr; errors.Is(err, netns.ErrNoVeth) {
		if !aloneOK {
			return &ui.ExitError{Code: 1, Err: errors.New("in a new network namespace, lo was not alone and down, or did not answer once up: see the output above")}
		}
		o.Warnf("%v: the third part, a veth pair, is left out.", err)
		return nil
	} else if err != nil {
		return err
	}
	standIn, _ := netns.ID(host)
	o.Note("%s then joined by a veth pair to a stand-in host (%s, the step's own namespace: the machine's network is untouched): %s %s there, eth0 %s inside:",
		stepTag(o, s), standIn, v.Host, v.HostAddr, v.PeerAddr)
	srv, err := listenIn(host, "hello from the host")
	if err != nil {
		return err
	}
	defer srv.Close()
	veth := script(NetworkSpec(name, w.Busybox(), limit, cg, opt.CgroupParent, host, v), vethScript(v.HostAddr.Addr()))
	dialed, stop := make(chan string, 1), make(chan struct{})
	veth.Started = func(r *container.Result) {
		if hl, err := netns.Links(host); err == nil {
			o.Note("  the host's side: %s", linkOf(hl, v.Host))
		}
		go func() { dialed <- dialIn(host, netip.AddrPortFrom(v.PeerAddr.Addr(), boxPort), stop) }()
	}
	out.Reset()
	r, err := launchTee(o, w, opt, &veth, &out)
	close(stop)
	if err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	fromBox, fromHost := srv.Got(), <-dialed
	o.Note("  the host's end got %q from the container, and %q from its nc -l.", fromBox, fromHost)
	gone := waitGone(host, v.Host, 10*time.Second) // the kernel removes it after the namespace, later on a busy machine

	o.Note("")
	pinged := strings.Count(out.String(), "1 packets received") == 1
	switch {
	case !aloneOK:
		return &ui.ExitError{Code: 1, Err: errors.New("in a new network namespace, lo was not alone and down, or did not answer once up: see the output above")}
	case !pinged || fromBox != "hello from the container" || fromHost != "hello from inside" || !strings.Contains(out.String(), "hello from the host"):
		return &ui.ExitError{Code: 1, Err: errors.New("the veth pair did not carry a ping and TCP both ways: see the output above")}
	case !strings.Contains(out.String(), "nothing: 127.0.0.1"):
		return &ui.ExitError{Code: 1, Err: errors.New("the container reached a server on 127.0.0.1: the host's loopback?")}
	case !gone:
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("the host's end %s outlived the container", v.Host)}
	}
	o.Note("%s alone, the container had only its own loopback; through the pair it reached the host's end, and only that. Namespace and pair are gone.", o.Bold("That is the difference:"))
	_ = w.RecordProgress(s.Name, time.Now())
	o.Next(s.NextHint())
	return nil
}

func linkOf(ls []netns.Link, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return fmt.Sprintf("%s (%s)", l, l.Kind)
		}
	}
	return name + " not found"
}

// waitGone waits for the interface called name to leave ns.
func waitGone(ns *os.File, name string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		ls, err := netns.Links(ns)
		if err == nil && !strings.Contains(fmt.Sprint(ls), name+" ") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// server answers one line with its reply, in a namespace of the step's.
type server struct {
	ln  net.Listener
	got chan string
}

func (s *server) Close() { s.ln.Close() }

// Got is the first line a client sent, "" if none came.
func (s *server) Got() string {
	select {
	case g := <-s.got:
		return g
	case <-time.After(100 * time.Millisecond):
		return ""
	}
}

// listenIn listens on every address of ns, its loopback included, at
// hostPort; each client gets reply, the first one's line is kept.
func listenIn(ns *os.File, reply string) (*server, error) {
	s := &server{got: make(chan string, 1)}
	err := netns.Do(ns, func() (err error) {
		s.ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", hostPort))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen in the stand-in host: %w", err)
	}
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			_, _ = fmt.Fprintln(c, reply)
			c.Close()
			select {
			case s.got <- strings.TrimSpace(line):
			default:
			}
		}
	}()
	return s, nil
}

// dialIn connects from ns to addr until it answers or stop is closed (the
// container is gone), and returns the line it sends.
func dialIn(ns *os.File, addr netip.AddrPort, stop <-chan struct{}) string {
	for {
		select {
		case <-stop:
			return ""
		default:
		}
		var line string
		err := netns.Do(ns, func() error {
			c, err := net.DialTimeout("tcp", addr.String(), time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		if err == nil {
			return strings.TrimSpace(line)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
