package bundle

import specs "github.com/opencontainers/runtime-spec/specs-go"

// defaultCaps is the set `runc spec` gives a container: far fewer than
// root's full set, enough for a shell, its tools and a low port.
var defaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

func capabilities() *specs.LinuxCapabilities {
	c := func() []string { return append([]string(nil), defaultCaps...) }
	return &specs.LinuxCapabilities{Bounding: c(), Effective: c(), Permitted: c()}
}

// mounts are the runtime's usual set: the learner mounted /proc by hand;
// /dev here is a tmpfs that runc fills with the standard device nodes.
func mounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}
}

func resources(o Options) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if o.Memory > 0 {
		m := o.Memory
		r.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if o.Pids > 0 {
		p := o.Pids
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	return r
}
