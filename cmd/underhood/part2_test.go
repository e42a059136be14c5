package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/netns/nettest"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/steps"
)

// Step 8: the escape reads a host file under chroot (/etc/hostname, or
// /etc/passwd where the host has no hostname file, as in the VM test) and
// is held by pivot_root; nothing is left.
func TestPivotRootHoldsTheEscape(t *testing.T) {
	needLab(t)
	r := runUH(t, "pivot-root", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.out, "Escaped: read /etc/") || !strings.Contains(r.out, "Held:") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
	// The same escape, given as the payload of the pivoted container.
	r = runUH(t, "pivot-root", "--cgroup-parent", cgParent, "--", "/bin/underhood", "escape", "/etc/hostname")
	if r.code != 1 || !strings.Contains(r.out, "Held:") {
		t.Errorf("escape in pivot_root: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// Step 9: the fork bomb is stopped at pids.max with pids.events raised, the
// loop throttled; underhood stands.
func TestLimitsStopABombAndThrottle(t *testing.T) {
	needLab(t)
	r := runUH(t, "limits", "--cgroup-parent", cgParent)
	if r.code != 0 || !strings.Contains(r.err, "the kernel refused") || !strings.Contains(r.err, "throttled in") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	if strings.Contains(r.err, "refused 0 forks") {
		t.Errorf("no fork refused:\n%s", r.err)
	}
	// At --cpus 0.2 the loop does about a fifth of the free one's work; on
	// a busy machine the free loop is slowed too, hence the margin.
	m := regexp.MustCompile(`free: counted to (\d+); limited: to (\d+)`).FindStringSubmatch(r.err)
	if m == nil {
		t.Errorf("no loop counts:\n%s", r.err)
	} else if free, held := atoi(m[1]), atoi(m[2]); held <= 0 || float64(held) > 0.45*float64(free) {
		t.Errorf("the limited loop counted to %d, the free one to %d: want about a fifth, at most 45 %%", held, free)
	} else {
		t.Logf("limited loop: %d of the free loop's %d (%.0f %%)", held, free, 100*float64(held)/float64(free))
	}
	assertClean(t)
	for _, bad := range [][]string{{"--pids", "0"}, {"--pids", "4"}, {"--pids", "abc"}, {"--cpus", "0"}, {"--cpus", "lots"}, {"--cpus", "9999"}} {
		for _, step := range []string{"limits", "run"} {
			r := runUH(t, append([]string{step}, bad...)...)
			if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || !strings.Contains(r.err, bad[1]) || strings.Contains(r.err, "strconv") {
				t.Errorf("%s %v: exit %d, %q; want exit 2 and one line naming the value", step, bad, r.code, r.err)
			}
		}
	}
	assertClean(t)
}

// run takes step 9's --pids (page 10 says so): thirty background jobs in a
// run limited to 16 tasks, and the shell cannot fork them all.
func TestRunTakesPids(t *testing.T) {
	needLab(t)
	r := runUH(t, "run", "--pids", "16", "--cpus", "0.5", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c",
		"for i in $(busybox seq 1 30); do busybox sleep 1 & done; wait")
	if !strings.Contains(r.err+r.out, "can't fork") {
		t.Errorf("run --pids 16: every fork worked (exit %d)\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// Step 10: with runc's privileges CapEff is runc's set and mount, mknod and
// the escape are refused.
func TestPrivilegesAreDropped(t *testing.T) {
	needLab(t)
	r := runUH(t, "privileges", "--cgroup-parent", cgParent)
	want := fmt.Sprintf("CapEff:\t%016x", caps.Mask(caps.RuncDefault))
	if r.code != 0 || !strings.Contains(r.out, want) || !strings.Contains(r.out, "NoNewPrivs:\t1") ||
		!strings.Contains(r.out, "Refused: chroot") || !strings.Contains(r.out, "mknod: /dev/sda1: Operation not permitted") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)
}

// runUHInNewNet is runUH in a network namespace of the test's own: what
// underhood takes for the host's network is the test's, never the machine's.
// It is killed after a minute.
func runUHInNewNet(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--workdir", workdir}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	return runCmd(cmd)
}

// needVeth skips, loudly, where the kernel cannot make veth pairs: no
// CONFIG_VETH, or a module not loaded. (The VM test loads Debian's veth.ko
// and fails these tests if they skip.)
func needVeth(t *testing.T) {
	t.Helper()
	if err := netns.VethSupported(); err != nil {
		t.Skipf("requires veth pairs: %v", err)
	}
}

var netnsID = regexp.MustCompile(`net:\[\d+\]`)

// Step 11: alone, only lo and down; joined by a veth pair, ping and TCP
// both ways; the machine's network unchanged, no namespace left.
func TestNetworkStep(t *testing.T) {
	needLab(t)
	needVeth(t)
	before := nettest.Take(t)
	r := runUHInNewNet(t, "network", "--cgroup-parent", cgParent)
	all := r.out + r.err
	for _, want := range []string{"lo: <LOOPBACK> mtu", "eth0 10.200.", "hello from the host", "nothing: 127.0.0.1",
		`got "hello from the container" from the container, and "hello from inside"`, "That is the difference:"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if r.code != 0 || strings.Count(all, "1 packets received") != 2 {
		t.Errorf("exit %d\n%s", r.code, all)
	}
	ids := netnsID.FindAllString(all, -1)
	if len(ids) < 4 {
		t.Errorf("namespaces named: %v, want the host's, the alone one's, the stand-in's", ids)
	}
	assertClean(t)
	nettest.Gone(t, ids...)
	nettest.Unchanged(t, before)
}

// run --net none: only lo; run --net veth: eth0 on a /30 and the host's end
// answers a ping. underhood runs in a network namespace of the test's, so
// the "host" end is there; the machine's network is unchanged afterwards.
func TestRunNet(t *testing.T) {
	needLab(t)
	before := nettest.Take(t)
	r := runUHInNewNet(t, "run", "--net", "none", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c",
		"busybox readlink /proc/self/ns/net; echo links=$(busybox ip -o link | busybox wc -l)")
	if r.code != 0 || !strings.Contains(r.out, "links=1") || !strings.Contains(r.err, "only lo, down") {
		t.Errorf("--net none: exit %d\n%s%s", r.code, r.out, r.err)
	}
	ids := netnsID.FindAllString(r.out, -1)
	assertClean(t)
	if err := netns.VethSupported(); err != nil {
		t.Skipf("--net veth: %v", err)
	}
	// The host's end is .1 when the container's is .2.
	ping := `a=$(busybox ip -4 -o addr show eth0 | busybox awk '{split($4, b, "[./]"); print b[1]"."b[2]"."b[3]"."b[4]-1}')
busybox ip -4 -o addr show eth0 | busybox awk '{print "eth0", $4}'
busybox readlink /proc/self/ns/net
busybox ping -c 1 -W 2 $a | busybox grep received`
	r = runUHInNewNet(t, "run", "--net", "veth", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", ping)
	if r.code != 0 || !strings.Contains(r.out, "eth0 10.200.") || !strings.Contains(r.out, "1 packets received") ||
		!strings.Contains(r.err, "joined by veth uh-") {
		t.Errorf("--net veth: exit %d\n%s%s", r.code, r.out, r.err)
	}
	ids = append(ids, netnsID.FindAllString(r.out, -1)...)
	if len(ids) != 2 {
		t.Errorf("namespaces named: %v", ids)
	}
	assertClean(t)
	nettest.Gone(t, ids...)
	nettest.Unchanged(t, before)
	r = runUH(t, "run", "--net", "bridge")
	if r.code != 2 || !strings.Contains(r.err, "none") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("--net bridge: exit %d, %q", r.code, r.err)
	}
}

// check 11 judges the shell way, done for real with ip(8) and nsenter(1):
// the "host" is a network namespace of the test's, where the check runs
// too; a container that waits, a veth pair, addresses, then the check.
func TestCheckNetworkByHand(t *testing.T) {
	needLab(t)
	needVeth(t)
	// ip and nsenter are the programs found in $PATH, made shell functions:
	// BusyBox's sh (the VM test's /bin/sh) runs its own applets first, and
	// BusyBox's ip ignores "peer name eth0 netns $PID" (its peer is a veth0 beside).
	var tools strings.Builder
	for _, c := range []string{"ip", "nsenter"} {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Skipf("requires %s (iproute2, util-linux)", c)
		}
		fmt.Fprintf(&tools, "%s() { %q \"$@\"; }\n", c, p)
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
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = box.Wait(); close(done) }()
	pid := fmt.Sprint(box.Process.Pid)
	boxNS, _ := netns.Of(box.Process.Pid)
	boxID, _ := netns.ID(boxNS)
	boxNS.Close()
	defer func() {
		_ = unix.Kill(box.Process.Pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("process %s still there 5s after SIGKILL", pid)
		}
		nettest.Gone(t, boxID)
	}()
	// sh runs a command line in the stand-in host, with a deadline.
	sh := func(line string) result {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", tools.String()+line)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "PID="+pid, "UH="+binary, "WD="+workdir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := netns.Do(host, cmd.Run)
		r := result{out: out.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.code = -1
		}
		return r
	}
	if r := sh(`ip link set lo up && ip link add veth-t type veth peer name eth0 netns $PID &&
nsenter -t $PID -n ip addr add 10.200.1.2/30 dev eth0 && nsenter -t $PID -n ip link set eth0 up &&
nsenter -t $PID -n ip link set lo up`); r.code != 0 {
		t.Fatalf("by hand: exit %d\n%s", r.code, r.out)
	}
	r := sh(`"$UH" --workdir "$WD" check 11`)
	if r.code != 1 || !strings.Contains(r.out, "veth-t has no address in 10.200.1.0/30") ||
		!strings.Contains(r.out, "sudo ip addr add 10.200.1.1/30 dev veth-t && sudo ip link set veth-t up") {
		t.Errorf("the host's end without an address: exit %d\n%s", r.code, r.out)
	}
	if r := sh(`ip addr add 10.200.1.1/30 dev veth-t && ip link set veth-t up`); r.code != 0 {
		t.Fatalf("by hand: exit %d\n%s", r.code, r.out)
	}
	r = sh(`"$UH" --workdir "$WD" check 11`)
	if r.code != 0 || !strings.Contains(r.out, "All 5 checks pass") || !strings.Contains(r.out, "10.200.1.2 answered in") {
		t.Errorf("done by hand: exit %d\n%s", r.code, r.out)
	}
}

// Step 12: root in both containers; in the user namespace it is 65534 on
// the host, a file it makes is 65534's, and the root-only file is denied.
// Where the way to the work directory is closed to other users, the run
// refuses with the directory and the fix, and leaves nothing.
func TestUserNamespace(t *testing.T) {
	needLab(t)
	tmp := filepath.Dir(workdir)
	st, err := os.Stat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(tmp, st.Mode().Perm())
	r := runUH(t, "userns", "--cgroup-parent", cgParent)
	if r.code != 1 || !strings.Contains(r.err, "which may not enter "+tmp+" (mode 0700): chmod o+x "+tmp) {
		t.Errorf("closed work directory: exit %d\n%s%s", r.code, r.out, r.err)
	}
	assertClean(t)

	if err := os.Chmod(tmp, 0o711); err != nil {
		t.Fatal(err)
	}
	r = runUH(t, "userns", "--cgroup-parent", cgParent)
	all := r.out + r.err
	for _, want := range []string{"runs as uid 0 (root)", "Escaped: read " + workdir + "/runs/root-",
		"runs as uid 65534 (nobody); its uid_map: 0 65534 1", "/made-inside is owned by 0:0",
		"Denied: out of the root", "on the host, /made-inside is owned by 65534:65534"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if r.code != 0 || strings.Count(all, "uid=0 gid=0") != 2 {
		t.Errorf("exit %d\n%s", r.code, all)
	}
	assertClean(t)
}

// inspect of a run --net veth container shows its interfaces: eth0 on its
// /30, lo. (Polled until eth0 is up: an inspect between the pair's making
// and its configuring sees eth0 down, without its address.) All of it in a network namespace of the test's; the inspector's
// host is PID 1, so the pair's other end (in the test's namespace) is not
// the host's.
func TestInspectNetwork(t *testing.T) {
	needLab(t)
	needVeth(t)
	before := nettest.Take(t)
	name := "nett-" + fmt.Sprint(time.Now().UnixNano()%1e9)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := `"$UH" --workdir "$WD" run --net veth --name "$N" --cgroup-parent "$CG" -- /bin/busybox sleep 3 &
for i in $(seq 50); do
  "$UH" --workdir "$WD" --no-color inspect "$N" >out 2>&1 && grep -Eq "inside +eth0 +veth +UP" out && break; sleep 0.1
done; cat out; rm -f out; wait`
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "UH="+binary, "WD="+workdir, "N="+name, "CG="+cgParent)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{`Network \(`, `inside\s+eth0\s+veth\s+UP\s+10\.200\.\d+\.\d+/30`, `inside\s+lo\s+UP\s+127\.0\.0\.1/8`, "No veth pair leads to the host's namespace"} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	assertClean(t)
	nettest.Unchanged(t, before)
}

// check 12 judges the shell way done for real: unshare --user, then the
// maps written by hand with echo into /proc/PID/uid_map and gid_map.
func TestCheckUserNSByHand(t *testing.T) {
	needLab(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("requires unshare (util-linux)")
	}
	// --kill-child: the sleep goes with unshare, whatever the test does.
	box := exec.Command("unshare", "--user", "--fork", "--kill-child", "/bin/busybox", "sleep", "60")
	box.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := box.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = box.Wait(); close(done) }()
	var sleep int
	defer func() {
		if sleep > 0 {
			_ = unix.Kill(sleep, unix.SIGKILL)
		}
		_ = unix.Kill(box.Process.Pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("unshare %d still there 5s after SIGKILL", box.Process.Pid)
		}
	}()
	self, _ := os.Readlink("/proc/self/ns/user")
	for deadline := time.Now().Add(30 * time.Second); sleep == 0 && time.Now().Before(deadline); {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", box.Process.Pid, box.Process.Pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, _ := os.Readlink("/proc/" + f[0] + "/ns/user"); ns != "" && ns != self {
				sleep, _ = strconv.Atoi(f[0])
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sleep == 0 {
		t.Fatal("unshare --user started no child in a user namespace")
	}
	r := runUH(t, "check", stepNumber("userns"))
	// unshare(1) itself is in the namespace too, and the first of it.
	if r.code != 1 || !strings.Contains(r.out, fmt.Sprintf("echo '0 65534 1' | sudo tee /proc/%d/uid_map", box.Process.Pid)) {
		t.Errorf("before the maps: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", sleep, f), []byte("0 65534 1\n"), 0); err != nil {
			t.Fatalf("write %s by hand: %v", f, err)
		}
	}
	// The maps are right, but the sleep started before them: nothing runs
	// as root inside yet, and the step is not done.
	r = runUH(t, "check", stepNumber("userns"))
	if r.code != 1 || !strings.Contains(r.out, "0 65534 1: uid 0 inside is 65534 outside") ||
		!strings.Contains(r.out, "it started before the map") {
		t.Errorf("after the maps: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// The page's next line: a process entered after the maps, as root.
	entered := exec.Command("nsenter", "-t", strconv.Itoa(sleep), "-U", "-S", "0", "-G", "0", "/bin/busybox", "sleep", "60")
	entered.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := entered.Start(); err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	defer func() { _ = entered.Process.Kill(); _ = entered.Wait() }()
	want := fmt.Sprintf("PID %d (busybox) runs as uid 65534 on the host, and as 0 inside", entered.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r = runUH(t, "check", stepNumber("userns"))
		if r.code == 0 && strings.Contains(r.out, want) || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 0 || !strings.Contains(r.out, want) {
		t.Errorf("after nsenter -S 0: exit %d, want 0 and %q\n%s%s", r.code, want, r.out, r.err)
	}
}

// run --isolation full: a System V shared memory segment the host made is
// not in the container's IPC namespace, and /proc/self/cgroup inside names
// the root of its own cgroup namespace; with the article's isolation, both
// are the host's.
func TestRunIsolationFullNamespaces(t *testing.T) {
	needLab(t)
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Skipf("requires System V shared memory: %v", err)
	}
	defer func() {
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			t.Errorf("remove shm %d: %v", id, err)
		}
	}()
	script := `echo shmids: $(busybox awk 'NR > 1 {print $2}' /proc/sysvipc/shm); busybox cat /proc/self/cgroup`
	shm := regexp.MustCompile(`(?m)^shmids:.*\b` + strconv.Itoa(id) + `\b`)
	r := runUH(t, "run", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", script)
	if r.code != 0 || !shm.MatchString(r.out) || !strings.Contains(r.out, cgParent) {
		t.Errorf("--isolation article: the host's segment %d and cgroup paths should show; exit %d\n%s%s", id, r.code, r.out, r.err)
	}
	r = runUH(t, "run", "--isolation", "full", "--cgroup-parent", cgParent, "--", "/bin/busybox", "sh", "-c", script)
	if r.code != 0 || shm.MatchString(r.out) || strings.Contains(r.out, "underhood/") || !strings.Contains(r.err, "IPC and cgroup namespaces") {
		t.Errorf("--isolation full: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n")[1:] {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("cgroup line %q inside its own cgroup namespace: want the root, /", l)
		}
	}
	assertClean(t)
}

// kill -9 of underhood while a run --net veth container runs: the pair goes
// with the container's namespace, and cleanup --all removes the rest. In a
// network namespace of the test's.
func TestRunNetVethKilled(t *testing.T) {
	needLab(t)
	needVeth(t)
	before := nettest.Take(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := `"$UH" --workdir "$WD" run --net veth --cgroup-parent "$CG" -- /bin/busybox sleep 30 >/dev/null 2>&1 &
pid=$!
for i in $(seq 600); do ip -o link | grep -q ' uh-' && break; sleep 0.05; done
echo "before: $(ip -o link | grep -c ' uh-')"
kill -9 $pid; wait $pid
for i in $(seq 600); do ip -o link | grep -q ' uh-' || break; sleep 0.05; done
echo "after: $(ip -o link | grep -c ' uh-')"
"$UH" --workdir "$WD" cleanup --all`
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "UH="+binary, "WD="+workdir, "CG="+cgParent)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "before: 1") || !strings.Contains(string(out), "after: 0") ||
		!strings.Contains(string(out), "cleaned box-") {
		t.Errorf("%v\n%s", err, out)
	}
	assertClean(t)
	nettest.Unchanged(t, before)
}

// run --rootless as a user without root (CI's test user, or nobody: see
// testUser): uid 0 inside, its own uid outside, no cgroup (none is
// delegated to it: see TestRunRootlessDelegated), nothing left.
// As root, or with --net veth, or in a work directory not the user's, it
// refuses with exit 2 and what to do.
func TestRunRootless(t *testing.T) {
	needLab(t)
	if why := ns.UserNSRefused(""); why != "" {
		t.Skipf("this kernel refuses user namespaces: %s", why)
	}
	if r := runUH(t, "run", "--rootless"); r.code != 2 || !strings.Contains(r.err, "userns' maps the container's root to nobody") {
		t.Errorf("as root: exit %d, %q", r.code, r.err)
	}
	home := nobodyHome(t, "nobody")
	asNobody := func(wd string, args ...string) result { return asNobodyIn(t, home, wd, "", args...) }
	wd := filepath.Join(home, "lab")
	if r := asNobody(wd, "download", "--from", "/bin/busybox"); r.code != 0 {
		t.Fatalf("download as nobody: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r := asNobody(wd, "run", "--rootless", "--", "/bin/busybox", "sh", "-c", "busybox id; busybox cat /proc/self/uid_map; echo pid=$$")
	if r.code != 0 || !strings.Contains(r.out, "uid=0 gid=0") || !regexp.MustCompile(fmt.Sprintf(`(?m)^\s*0\s+%d\s+1$`, nobody)).MatchString(r.out) ||
		!strings.Contains(r.out, "pid=1") || !strings.Contains(r.err, "no memory limit") || !strings.Contains(r.err, fmt.Sprintf("root inside is you, uid %d", nobody)) {
		t.Errorf("run --rootless: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if ents, _ := os.ReadDir(filepath.Join(wd, "runs")); len(ents) > 0 {
		t.Errorf("runs left: %v", ents)
	}
	if r := asNobody(wd, "run", "--rootless", "--net", "veth"); r.code != 2 || !strings.Contains(r.err, "--net none") {
		t.Errorf("--rootless --net veth: exit %d, %q", r.code, r.err)
	}
	if r := asNobody(workdir, "run", "--rootless"); r.code != 2 || !strings.Contains(r.err, "not yours to write") {
		t.Errorf("a work directory of root's: exit %d, %q", r.code, r.err)
	}
	assertClean(t)
}

// stepNumber is the number the registry gives the named step, as check
// takes it: numbers move when a step is added before it.
func stepNumber(name string) string {
	s, ok := steps.ByName(name)
	if !ok {
		panic("no step " + name)
	}
	return strconv.Itoa(s.N)
}

// run grows with Part 2: --isolation full holds what a plain run does not:
// CapEff is runc's set, the chroot escape is refused, a fork storm stops at
// --pids, and the root is pivoted (no walk up reaches the host's /).
func TestRunIsolationFull(t *testing.T) {
	needLab(t)
	const script = `busybox grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
busybox chroot / /bin/busybox true 2>&1 && echo "chroot worked"
busybox mount -t tmpfs none /etc 2>&1 && echo "mounted"
` + steps.StormScript
	plain := runUH(t, "run", "--cgroup-parent", cgParent, "--pids", "64", "--memory", "64M", "--", "/bin/busybox", "sh", "-c", script)
	full := runUH(t, "run", "--isolation", "full", "--cgroup-parent", cgParent, "--pids", "64", "--memory", "64M", "--", "/bin/busybox", "sh", "-c", script)
	want := fmt.Sprintf("CapEff:\t%016x", caps.Mask(caps.RuncDefault))
	if strings.Contains(plain.out, want) || !strings.Contains(plain.out, "chroot worked") || !strings.Contains(plain.out, "mounted") ||
		!strings.Contains(plain.err, "chroot, every capability of root") {
		t.Errorf("plain run: exit %d\n%s%s", plain.code, plain.out, plain.err)
	}
	if !strings.Contains(full.out, want) || !strings.Contains(full.out, "NoNewPrivs:\t1") || !strings.Contains(full.out, "Seccomp:\t2") ||
		strings.Contains(full.out, "chroot worked") || strings.Contains(full.out, "mounted") || !strings.Contains(full.out, "fork storm are over") ||
		!strings.Contains(full.err, "pivot_root, runc's capabilities") {
		t.Errorf("--isolation full: exit %d\n%s%s", full.code, full.out, full.err)
	}
	assertClean(t)
	for _, bad := range [][]string{{"--isolation", "partial"}, {"--pids", "-1"}, {"--cpus", "0"}} {
		r := runUH(t, append([]string{"run"}, bad...)...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("run %v: exit %d, %q; want exit 2 and one line", bad, r.code, r.err)
		}
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
