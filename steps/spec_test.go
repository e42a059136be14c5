package steps

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/ns"
)

// What each container step asks of the kernel, without running it.
func TestStepSpecs(t *testing.T) {
	host := cgroup.Host{}
	for _, c := range []struct {
		name   string
		spec   container.Spec
		clone  uintptr
		flags  ns.Flags
		memory int64
	}{
		{"chroot", ChrootSpec("/r"), 0, ns.Chroot, 0},
		{"mount-proc", MountProcSpec("/r"), unix.CLONE_NEWNS, ns.Private | ns.MountProc | ns.Chroot, 0},
		{"unshare", UnshareSpec("/r"), unix.CLONE_NEWPID | unix.CLONE_NEWNS, ns.Private | ns.MountProc | ns.Chroot, 0},
		{"cgroup", CgroupSpec("/r", "/v", 7340032, host, "underhood"), 0, 0, 7340032},
		{"run", RunSpec("box", "/bb", 7340032, host, "underhood"), unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS,
			ns.Private | ns.MountProc | ns.BindDev | ns.Chroot | ns.Hostname, 7340032},
	} {
		s := c.spec
		if s.Kind != c.name || s.Clone != c.clone || s.Flags != c.flags || s.Memory != c.memory {
			t.Errorf("%s: kind %s clone %#x flags %v memory %d; want clone %#x flags %v memory %d",
				c.name, s.Kind, s.Clone, s.Flags, s.Memory, c.clone, c.flags, c.memory)
		}
	}
	if s := RunSpec("box", "/bb", 1, cgroup.Host{}, "p"); s.Hostname != "box" || s.Rootfs != "" || s.Busybox != "/bb" || s.CgroupParent != "p" {
		t.Errorf("run: hostname %q, rootfs %q (want its own), busybox %q, parent %q", s.Hostname, s.Rootfs, s.Busybox, s.CgroupParent)
	}
	if s := CgroupSpec("/r", "/v", 1, cgroup.Host{}, "p"); len(s.Env) == 0 || s.Env[0] != "PATH=/v:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("cgroup: the lab's BusyBox is not first in PATH: %v", s.Env)
	}
}
