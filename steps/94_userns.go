package steps

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/escape"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// Nobody is the host user the user namespace step maps the container's
// root to: 65534, nobody, which owns nothing on the host.
const Nobody = 65534

// usersScript runs as root in both containers of the step; secret is a
// host file only the host's root may read.
func usersScript(secret string, own bool) string {
	s := "busybox id\n"
	if own {
		s += `busybox cat /proc/self/uid_map
busybox touch /made-inside && busybox ls -ln /made-inside | busybox awk '{print "/made-inside is owned by", $3":"$4}'
`
	}
	// Its verdict alone: the lines from the first not indented (the
	// steps are), wrapped to the terminal's COLUMNS.
	return s + "/bin/underhood --no-color escape " + secret + " | busybox sed -n '/^[^ ]/,$p'"
}

func init() {
	register(&Step{Name: "userns", Title: "Users: root inside, nobody outside", Part: Beyond, Kind: Container,
		Long: "Runs the same checks twice, as root in a container: first as step 7 does, where\n" +
			"root inside is the host's root (the chroot escape reads a file only root may\n" +
			"read), then in a user namespace whose uid 0 is the host's nobody (65534):\n" +
			"root inside, nobody outside, and the same escape is denied the file.\n" +
			"With -- CMD, runs CMD in a container with a user namespace.",
		Options:   WithMemory | WithPauses,
		Page:      "13-user-namespace.md",
		Code:      []string{"lab/ns/ns.go Command", "lab/container/container.go reachable", "lab/ns/setup.go setup"},
		Ephemeral: true, Done: readyToRun, Run: UserNS,
		Explain: Explanation{
			What: "Runs the full container twice with underhood inside it: as step 7 does, then with a user namespace that maps uid and gid 0 inside to 65534 (nobody) on the host. Each time it shows id, the payload's uid as the host sees it, and the chroot escape trying to read a file only the host's root may read.",
			Why: "Without a user namespace, uid 0 in a container is uid 0 on the host: whatever gets out (an escape, a mounted disk, a bug in the kernel) gets out as root. " +
				"A user namespace has its own users: its uid_map says which host uid each of its uids is. Root inside holds every capability, but only over what its namespace owns; to the rest of the host it is the user the map names.",
			Shell: []string{
				"sudo bash                               # a root shell; exit at the end",
				"unshare --user --pid --mount --uts --fork sleep 1000 &",
				"sleep 1; PID=$(pgrep -P $!)             # its sleep: that unshare's child",
				"echo '0 65534 1' > /proc/$PID/uid_map   # 0 inside = 65534 outside",
				"echo deny > /proc/$PID/setgroups",
				"echo '0 65534 1' > /proc/$PID/gid_map",
				"nsenter -t $PID -U -m -u -p -S 0 -G 0 busybox id     # uid=0 gid=0",
				"nsenter -t $PID -U -m -u -p -S 0 -G 0 sleep 1000 &   # root inside",
				"sleep 1; ps -o uid,pid,cmd --ppid $!    # 65534: nobody on the host",
				"kill -9 $PID; exit                      # PID 1 ignores a plain kill",
				"unshare --user --map-root-user id            # as a normal user",
			},
			Syscalls: []string{
				"mkdir(root), copy BusyBox and underhood, chown(root, 65534, 65534)",
				"clone(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS)",
				"write(\"/proc/PID/uid_map\", \"0 65534 1\")",
				"write(\"/proc/PID/setgroups\", \"deny\"), write(\"/proc/PID/gid_map\", \"0 65534 1\")",
				"in the child: setgid(0), setuid(0), then execve(\"/proc/self/exe\")",
				"mount(proc), mount(MS_BIND) ×3, sethostname, chroot(root), execve(payload)",
			},
			Differs: "The map must be written after the clone and before the child's first execve: a process that execs while its uid is unmapped loses its capabilities in the new namespace. " +
				"A Go program cannot act in that window itself, so Go's runtime writes the map from underhood's own mapping (runc does it in C before its Go runtime starts); by hand you write it with echo, as the shell way shows. " +
				"Docker and Podman map a range (subuid, e.g. 100000-165535) so that the container has many users; one uid is enough here, and the root filesystem's top directory is given to it.",
			Observe: "First: id says uid=0, the host sees uid 0, and the escape reads the host-only file. Second: id still says uid=0, uid_map says 0 65534 1, the host sees uid 65534, a file made inside is owned by 65534 on the host, and the escape gets out of the chroot but is denied the file. " +
				"What this does not isolate: System V IPC, and the chroot itself (pivot_root is step 8's fix).",
		},
		Check: StepCheck{Run: check.UserNS, Machine: true, Looks: "a user namespace made by hand: unshare --user, a uid_map and gid_map that make root inside nobody outside",
			Target: func(check.Env) string { return "this machine's user namespaces and their maps" },
			ByHand: "map root to nobody by hand with unshare --user and /proc/PID/uid_map as the page shows, and run check while the container runs"},
		Tour: TourStop{About: [2]string{
			"Root in a container is the host's root unless a user namespace maps it to another uid.",
			"Mapped to nobody (65534): root inside, nobody outside, and a host file stays closed.",
		}, Cmd: "sudo underhood userns", Demo: (*tour).userns},
	})
}

// UserNSSpec is the full container of step 7 with a user namespace whose
// root is the host's nobody, and underhood inside it for the escape.
func UserNSSpec(name, busyboxPath, self string, limit int64, host cgroup.Host, parent string) container.Spec {
	s := RunSpec(name, busyboxPath, limit, host, parent)
	s.Kind = "userns"
	s.Users = Nobody
	s.CopyIn = []container.CopyIn{{Dest: "bin/underhood", Src: self}}
	return s
}

// UserNS runs the user namespace step.
func UserNS(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("userns")
	host, self, err := selfSetup(s.Name, w, opt)
	if err != nil {
		return err
	}
	limit := limitOf(opt)
	if len(opt.Argv) > 0 {
		return start(o, w, opt, UserNSSpec(container.RandomName("users"), w.Busybox(), self, limit, host, opt.CgroupParent), nil)
	}
	// The file only the host's root may read is in each run's directory,
	// outside its root: the run's cleanup removes it, even after a kill -9.
	hostUID := func(r *container.Result) {
		uid, m := uidOf(r.HostPID)
		o.Note("  on the host, PID %d runs as uid %s%s", r.HostPID, uid, m)
	}
	rootName := container.RandomName("root")
	secret := filepath.Join(w.Run(rootName), "host-only")
	o.Note("%s root in the article's container, with underhood in it; %s is a file only the host's root may read (mode 0600):", stepTag(o, s), secret)
	before := RunSpec(rootName, w.Busybox(), limit, host, opt.CgroupParent)
	before.Kind, before.Argv = "userns", []string{"/bin/busybox", "sh", "-c", usersScript(secret, false)}
	before.CopyIn = []container.CopyIn{{Dest: "bin/underhood", Src: self}}
	before.Started = func(*container.Result) { _ = writeSecret(secret) }
	before.Released = hostUID
	var first bytes.Buffer
	if r, err := launchTee(o, w, opt, &before, &first); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}

	if err := opt.more("root in a user namespace"); err != nil {
		return err
	}
	o.Note("")
	name := container.RandomName("users")
	secret = filepath.Join(w.Run(name), "host-only")
	o.Note("%s root in a user namespace whose uid and gid 0 are the host's %d (nobody); its host-only file is %s:", stepTag(o, s), Nobody, secret)
	after := UserNSSpec(name, w.Busybox(), self, limit, host, opt.CgroupParent)
	after.Argv = []string{"/bin/busybox", "sh", "-c", usersScript(secret, true)}
	after.Started = func(*container.Result) { _ = writeSecret(secret) }
	after.Released = hostUID
	made := "?"
	after.Exited = func(r *container.Result) {
		var st syscall.Stat_t
		if syscall.Lstat(filepath.Join(r.Dir, "rootfs", "made-inside"), &st) == nil {
			made = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		}
	}
	var second bytes.Buffer
	if r, err := launchTee(o, w, opt, &after, &second); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	o.Note("  on the host, /made-inside is owned by %s", made)

	o.Note("")
	out1, out2 := first.String(), second.String()
	switch {
	case !strings.Contains(out1, "uid=0") || !strings.Contains(out1, "Escaped:"):
		return &ui.ExitError{Code: 1, Err: errors.New("as plain root, id did not say uid=0 or the escape did not read the file: see the output above")}
	case !strings.Contains(out2, "uid=0") || !strings.Contains(out2, "Denied:") || made != fmt.Sprintf("%d:%d", Nobody, Nobody):
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("in the user namespace, root was not nobody outside (the file made inside is %s on the host), or the file was read: see the output above", made)}
	}
	o.Note("%s root in both, but in the user namespace it is uid %d to the host: what it makes is nobody's, and the host's root-only file stays closed (%s).",
		o.Bold("That is the difference:"), Nobody, escape.Denied)
	_ = w.RecordProgress(s.Name, time.Now())
	o.Next(s.NextHint())
	return nil
}

// writeSecret makes the file p that only the host's root may read.
func writeSecret(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("make the host-only file: %w", err)
	}
	_, err = f.WriteString("only the host's root may read this\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// uidOf is the real uid of pid as the host sees it, with its user name
// and, in a user namespace, its map.
func uidOf(pid int) (string, string) {
	b, err := os.ReadFile(proc.Host.Path(pid, "status"))
	if err != nil {
		return "?", ""
	}
	uid := "?"
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	switch uid {
	case "0":
		uid += " (root)"
	case strconv.Itoa(Nobody):
		uid += " (nobody)"
	}
	m, _ := os.ReadFile(proc.Host.Path(pid, "uid_map"))
	if f := strings.Fields(string(m)); len(f) == 3 && f[1] != "0" {
		return uid, fmt.Sprintf("; its uid_map: %s %s %s", f[0], f[1], f[2])
	}
	return uid, ""
}
