package steps

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/escape"
	"github.com/underhood/underhood/lab/ns"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

// PrivilegesScript shows what root in the container may still do.
const PrivilegesScript = `busybox grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "--- busybox mount -t tmpfs none /etc"; busybox mount -t tmpfs none /etc 2>&1 && echo "mounted"
echo "--- busybox mknod /dev/sda1 b 8 1"; busybox mknod /dev/sda1 b 8 1 2>&1 && echo "made a block device"
echo "--- busybox wc -l < /proc/keys"; busybox wc -l < /proc/keys 2>&1
echo "--- /bin/underhood escape /etc/hostname"; /bin/underhood --no-color escape /etc/hostname | busybox sed -n '/^[^ ]/,$p'`

func init() {
	register(&Step{Name: "privileges", Title: "Fewer privileges: capabilities and seccomp", Part: Beyond, Kind: Container,
		Long: "Runs the same checks twice, as root in a container: first with the\n" +
			"capabilities that step 7's container keeps (all of them), then with runc's:\n" +
			"its capability set, no_new_privs, a seccomp filter, and masked /proc paths.\n" +
			"Mounting, making a device node and the chroot escape are refused.\n" +
			"With -- CMD, runs CMD in the container with fewer privileges.",
		Options:   WithMemory | WithPauses,
		Page:      "11-privileges.md",
		Code:      []string{"lab/caps/caps.go Drop", "lab/caps/caps.go NoNewPrivs", "lab/seccomp/seccomp.go Load", "lab/masked/masked.go Apply", "lab/ns/setup.go dropPrivileges"},
		Ephemeral: true, Done: readyToRun, Run: Privileges,
		Explain: Explanation{
			What: "Runs a check script as root in the full container, first as step 7 does (root keeps every capability) and then as runc does: only CAP_AUDIT_WRITE, CAP_KILL and CAP_NET_BIND_SERVICE, no_new_privs, a seccomp filter, and the host's parts of /proc masked.",
			Why: "User ID 0 in a container is the host's root: with every capability it can mount the host's disk, make device nodes, load kernel modules, or chroot its way out. " +
				"Capabilities split root's power into about forty pieces; a container needs almost none. no_new_privs keeps a setuid file from giving any back, and the seccomp filter refuses system calls no container needs, whatever its capabilities.",
			Shell: []string{
				"grep Cap /proc/self/status                  # as root: all of your shell's",
				"capsh --decode=0000000020000420             # what runc keeps",
				"sudo setpriv --no-new-privs --bounding-set=-all,+audit_write,+kill,+net_bind_service --inh-caps=-all -- /bin/busybox sh",
				"# in it: grep -e Cap -e NoNewPrivs /proc/self/status; keep it open for check 10; exit to leave",
			},
			Syscalls: []string{
				"mount(\"/dev/null\", \"root/proc/keys\", MS_BIND), mount(tmpfs, \"root/proc/acpi\", MS_RDONLY)",
				"mount(\"root/proc/sys\", …, MS_BIND|MS_REMOUNT|MS_RDONLY)",
				"prctl(PR_CAPBSET_DROP, cap) for every capability but three",
				"prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), capset(effective = permitted = inheritable = the three)",
				"prctl(PR_SET_NO_NEW_PRIVS, 1)",
				"prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, BPF: arch check, EPERM for mount, umount2, pivot_root, unshare, setns, keyctl, bpf, kexec_load, init_module, reboot, …)",
				"execve(payload)",
			},
			Differs: "runc's 'runc spec' config keeps only these three capabilities; Docker keeps fourteen (among them CAP_SYS_CHROOT and CAP_MKNOD) and relies on its seccomp profile and the devices cgroup for the rest. " +
				"The filter here refuses a short list, chosen for the lesson; Docker's profile allows a list instead and refuses everything else.",
			Observe: "First run: CapEff with (nearly) every bit set, the mount and the device node work, and the escape reads the host's hostname. Second run: CapEff 0000000020000420, NoNewPrivs 1, Seccomp 2, and all of it is refused with 'Operation not permitted'.",
		},
		Check: StepCheck{Run: check.Privileges, Machine: true, Looks: "a shell with runc's privileges made by hand (setpriv): its bounding set, no_new_privs, effective set, seccomp",
			ByHand: "exit the setpriv shell when you are done",
			Target: func(check.Env) string { return "the processes of this machine" }},
		Tour: TourStop{About: [2]string{
			"Root in a container is the host's root: it keeps every capability unless they are dropped.",
			"runc keeps three, sets no_new_privs and filters system calls: mount, mknod and the escape fail.",
		}, Cmd: "sudo underhood privileges", Demo: (*tour).privileges},
	})
}

// PrivilegesSpec is the full container with pivot_root, masked paths and
// runc's privileges.
func PrivilegesSpec(name, busyboxPath, self string, limit int64, host cgroup.Host, parent string) container.Spec {
	s := PivotRootSpec(name, busyboxPath, self, limit, host, parent)
	s.Kind = "privileges"
	s.Flags |= ns.MaskPaths | ns.DropPrivileges
	return s
}

// Privileges runs the privileges step.
func Privileges(o *ui.IO, w state.Workdir, opt ContainerOptions) error {
	s := of("privileges")
	host, self, err := selfSetup(s.Name, w, opt)
	if err != nil {
		return err
	}
	limit := limitOf(opt)
	if len(opt.Argv) > 0 {
		return start(o, w, opt, PrivilegesSpec(container.RandomName("privs"), w.Busybox(), self, limit, host, opt.CgroupParent), nil)
	}
	argv := []string{"/bin/busybox", "sh", "-c", PrivilegesScript}

	o.Note("%s root in the article's container, with every capability:", stepTag(o, s))
	before := RunSpec(container.RandomName("root"), w.Busybox(), limit, host, opt.CgroupParent)
	before.Kind, before.Argv = "privileges", argv
	before.CopyIn = []container.CopyIn{{Dest: "bin/underhood", Src: self}}
	var first bytes.Buffer
	if r, err := launchTee(o, w, opt, &before, &first); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	if err := opt.more("the same, with runc's privileges"); err != nil {
		return err
	}
	o.Note("")
	o.Note("%s root with runc's privileges (%s), no_new_privs, seccomp, masked /proc:", stepTag(o, s), strings.Join(caps.Names(caps.Mask(caps.RuncDefault)), ", "))
	after := PrivilegesSpec(container.RandomName("privs"), w.Busybox(), self, limit, host, opt.CgroupParent)
	after.Argv = argv
	var second bytes.Buffer
	if r, err := launchTee(o, w, opt, &after, &second); err != nil || r.Interrupted != nil {
		return stopped(o, err, r)
	}
	want := fmt.Sprintf("CapEff:\t%016x", caps.Mask(caps.RuncDefault))
	ok := strings.Contains(second.String(), want) && !strings.Contains(second.String(), "mounted") &&
		!strings.Contains(second.String(), "made a block device") && !strings.Contains(second.String(), "Escaped")
	o.Note("")
	if !ok {
		return &ui.ExitError{Code: 1, Err: fmt.Errorf("with fewer privileges, something was still allowed, or CapEff is not %016x: see the output above", caps.Mask(caps.RuncDefault))}
	}
	o.Note("%s as plain root every one of those worked; with runc's privileges each was refused, and the escape too (%s).", o.Bold("That is the difference:"), escape.Refused)

	_ = w.RecordProgress(s.Name, time.Now())
	o.Next(s.NextHint())
	return nil
}
