// Package seccomp loads a system call filter: a small BPF program the
// kernel runs on every system call of the process and its children, which
// answers EPERM for calls a container has no business making, as runc's
// default profile (from Docker) does. Capabilities already refuse most of
// them; the filter refuses them even to a process that got a capability
// back, and refuses a few no capability guards (e.g. unshare of a user
// namespace).
package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Refused are the system calls the filter answers with EPERM, each for a
// reason a learner can say in one line.
var Refused = []Call{
	{"mount", "change the mount table: undo the container's view of files"},
	{"umount2", "unmount what hides the host, e.g. a masked /proc file"},
	{"pivot_root", "swap the root again"},
	{"unshare", "make new namespaces, a user namespace above all (root there again)"},
	{"setns", "join another namespace, e.g. the host's through /proc/1/ns"},
	{"keyctl", "the kernel keyring is not namespaced: other containers' keys"},
	{"add_key", "the kernel keyring is not namespaced"},
	{"request_key", "the kernel keyring is not namespaced"},
	{"kexec_load", "boot another kernel"},
	{"kexec_file_load", "boot another kernel"},
	{"init_module", "load code into the kernel"},
	{"finit_module", "load code into the kernel"},
	{"delete_module", "unload part of the kernel"},
	{"bpf", "load BPF programs into the kernel"},
	{"perf_event_open", "watch other processes and the kernel"},
	{"reboot", "reboot the host"},
	{"swapon", "change the host's swap"},
	{"swapoff", "change the host's swap"},
	{"open_by_handle_at", "open host files by handle, past any root (the 'shocker' escape)"},
}

// Call is a refused system call and why.
type Call struct{ Name, Why string }

// Program is the filter: check the architecture (a 32-bit call number
// means something else), then EPERM for each refused call, allow the rest.
func Program() ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	prog = append(prog,
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.LoadAbsolute{Off: 0, Size: 4}, // seccomp_data.nr
	)
	for _, c := range Refused {
		nr, ok := numbers[c.Name]
		if !ok {
			return nil, fmt.Errorf("seccomp: no system call number for %s on this architecture", c.Name)
		}
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		)
	}
	prog = append(prog, bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW})
	return bpf.Assemble(prog)
}

// Load installs the filter on the calling thread, for it and everything it
// starts. It needs no_new_privs (or CAP_SYS_ADMIN) first; it cannot be
// taken off again.
func Load() error {
	raw, err := Program()
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_SECCOMP, %d instructions): %w", len(filter), err)
	}
	return nil
}
