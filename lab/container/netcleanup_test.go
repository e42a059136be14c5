package container

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/netns/nettest"
	"github.com/underhood/underhood/lab/state"
)

// After a kill -9, cleanup removes a host end that the journal names, and
// only a veth: a recorded name that is another kind of interface stays.
// All of it in network namespaces the test makes.
func TestCleanupRemovesLeftoverVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root: network namespaces and veth pairs (CI runs as root)")
	}
	if err := netns.VethSupported(); err != nil {
		t.Skipf("requires veth pairs: %v", err)
	}
	before := nettest.Take(t)
	host, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	hostID, _ := netns.ID(host)
	defer func() {
		host.Close()
		nettest.Gone(t, hostID)
		nettest.Unchanged(t, before)
	}()
	box := exec.Command("/bin/busybox", "sleep", "60")
	box.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := box.Start(); err != nil {
		t.Skipf("requires /bin/busybox: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = box.Wait(); close(done) }()
	defer func() {
		_ = unix.Kill(box.Process.Pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("process %d still there 5s after SIGKILL", box.Process.Pid)
		}
	}()
	v := netns.Veth{Host: "uh-cleantest", Peer: "eth0"}
	if v.HostAddr, v.PeerAddr, err = netns.Pick(host); err != nil {
		t.Fatal(err)
	}
	if err := netns.Connect(host, box.Process.Pid, v); err != nil {
		t.Fatal(err)
	}

	w := state.Workdir{Root: t.TempDir()}
	j, err := w.CreateRun("cut")
	if err != nil {
		t.Fatal(err)
	}
	j.Record(state.Entry{Op: "run", Name: "cut", Kind: "network"})
	j.Record(state.Entry{Op: "veth", Name: "lo"})
	j.Record(state.Entry{Op: "veth", Name: "veth0host"}) // a host's veth, forged into the journal
	j.Record(state.Entry{Op: "veth", Name: v.Host})
	j.Close()
	var rep Report
	if err := netns.Do(host, func() (err error) { rep, err = Cleanup(w, cgroup.Host{}, "cut"); return err }); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Spared, func(s string) bool { return strings.HasPrefix(s, "veth veth0host: not a name underhood gives") }) {
		t.Errorf("a veth not named by underhood was not spared: %v", rep.Spared)
	}
	if !slices.Equal(rep.Veths, []string{v.Host}) {
		t.Errorf("removed veths %v, want [%s]", rep.Veths, v.Host)
	}
	links, _ := netns.Links(host)
	names := []string{}
	for _, l := range links {
		names = append(names, l.Name)
	}
	if slices.Contains(names, v.Host) || !slices.Contains(names, "lo") {
		t.Errorf("after cleanup: %v, want lo and no %s", names, v.Host)
	}
}
