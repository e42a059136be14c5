// Package caps drops a process's capabilities to a small set, as runc does
// for the config that 'runc spec' writes: root in the container keeps only
// what the set names, whatever its user ID says.
package caps

import (
	"fmt"
	"math/bits"
	"strings"

	"golang.org/x/sys/unix"
)

// RuncDefault is the set in the config.json that 'runc spec' writes:
// AUDIT_WRITE, KILL, NET_BIND_SERVICE. (Docker keeps 14, among them
// SYS_CHROOT and MKNOD.)
var RuncDefault = []int{unix.CAP_AUDIT_WRITE, unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE}

// Mask is a set of capabilities as the kernel shows it (CapEff: in
// /proc/PID/status): bit N is capability N.
func Mask(set []int) uint64 {
	var m uint64
	for _, c := range set {
		m |= 1 << uint(c)
	}
	return m
}

// Drop keeps only keep, in every set of the calling thread: the bounding
// set (what may ever come back, e.g. through a setuid file), the ambient
// set (cleared), and the effective, permitted and inheritable sets. The
// shell's way is: capsh --drop=… or setpriv --bounding-set=… --inh-caps=….
func Drop(keep []int) error {
	want := Mask(keep)
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if want&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %s): %w", Name(c), err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{}
	for i := range data {
		word := uint32(want >> (32 * i))
		data[i] = unix.CapUserData{Effective: word, Permitted: word, Inheritable: word}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset(%s): %w", strings.Join(Names(want), ","), err)
	}
	return nil
}

// NoNewPrivs sets no_new_privs: no execve can ever give the process more
// privileges (a setuid file, file capabilities). setpriv --no-new-privs.
func NoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	return nil
}

// Names decodes a mask into names, lowest bit first: CAP_KILL, ….
func Names(mask uint64) []string {
	var out []string
	for mask != 0 {
		c := bits.TrailingZeros64(mask)
		out = append(out, Name(c))
		mask &^= 1 << uint(c)
	}
	return out
}

// Name is a capability's name, e.g. CAP_SYS_ADMIN.
func Name(c int) string {
	if c >= 0 && c < len(names) && names[c] != "" {
		return "CAP_" + names[c]
	}
	return fmt.Sprintf("CAP_%d", c)
}

var names = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}
