package doctor

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/ui"
	"golang.org/x/sys/unix"
)

const (
	overlayRoot = "600 550 0:52 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work\n"
	cgroupRO    = "610 600 0:60 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n"
	cgroupRW    = "610 600 0:60 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n"
	// Docker's default capabilities (no CAP_SYS_ADMIN), and all of them.
	dockerCaps = "Name:\tbash\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n"
	allCaps    = "Name:\tbash\nCapEff:\t000001ffffffffff\nSeccomp:\t0\n"
	nspawnCaps = "Name:\tbash\nCapEff:\t00000000fdecbfff\nSeccomp:\t2\n"
	wsl2       = "5.15.167.4-microsoft-standard-WSL2"
)

// v2Host is a pure cgroup v2 machine with the memory controller.
func v2Host() machine {
	m := hybridHost()
	m.release = "6.8.0-31-generic"
	m.selfCgroup = "0::/user.slice\n"
	m.fsTypes = map[string]int64{".": unix.CGROUP2_SUPER_MAGIC}
	m.files = map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n"}
	return m
}

func envRow(t *testing.T, m machine) Check {
	t.Helper()
	return find(t, Run(m.options(t)), "environment")
}

// want checks a row's status and that its detail and hint hold the words.
func want(t *testing.T, c Check, l ui.Level, detail, hint []string) {
	t.Helper()
	if c.Status != l {
		t.Errorf("%s: status %s, want %s (%s | %s)", c.Check, c.Status, l, c.Detail, c.Hint)
	}
	for _, w := range detail {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("%s: detail %q lacks %q", c.Check, c.Detail, w)
		}
	}
	for _, w := range hint {
		if !strings.Contains(c.Hint, w) {
			t.Errorf("%s: hint %q lacks %q", c.Check, c.Hint, w)
		}
	}
}

func TestEnvironmentWSL(t *testing.T) {
	t.Run("WSL2 without systemd, hybrid", func(t *testing.T) {
		m := hybridHost()
		m.release = wsl2
		m.procFiles = map[string]string{"sys/fs/binfmt_misc/WSLInterop": "enabled\n"}
		m.rootFiles = map[string]string{"etc/wsl.conf": "[automount]\nenabled = true\n"}
		want(t, envRow(t, m), Info,
			[]string{"WSL2 (Linux " + wsl2, "/proc/sys/fs/binfmt_misc/WSLInterop", "systemd off", "cgroup hybrid", "memory on v1"},
			[]string{"systemd=true under [boot] in /etc/wsl.conf", "cgroup_no_v1=all under [wsl2]", `%UserProfile%\.wslconfig`, "wsl --shutdown"})
	})
	t.Run("WSL2 with systemd, cgroup v2", func(t *testing.T) {
		m := v2Host()
		m.release = wsl2
		m.procFiles = map[string]string{"sys/fs/binfmt_misc/WSLInterop-late": "enabled\n"}
		m.rootFiles = map[string]string{"etc/wsl.conf": "[boot]\nsystemd = true\n"}
		want(t, envRow(t, m), Info, []string{"WSLInterop-late", "systemd on", "cgroup v2 with memory"}, []string{"nothing to do"})
	})
	t.Run("WSL2 without the memory controller", func(t *testing.T) {
		m := v2Host()
		m.release = wsl2
		m.files = map[string]string{"cgroup.controllers": "cpu pids\n"}
		m.rootFiles = map[string]string{"etc/wsl.conf": "[boot]\nsystemd=false\n"}
		want(t, envRow(t, m), ui.Warn, []string{"systemd off", "no memory controller"}, []string{"systemd=true"})
	})
	t.Run("WSL1", func(t *testing.T) {
		m := hybridHost()
		m.release = "4.4.0-19041-Microsoft"
		want(t, envRow(t, m), ui.Fail, []string{"WSL1", "no namespaces or cgroups"}, []string{"wsl --set-version <distribution> 2"})
	})
}

func TestEnvironmentContainers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		m            func(machine) machine
		level        ui.Level
		detail, hint []string
	}{
		{"Docker, not privileged", func(m machine) machine {
			m.rootFiles = map[string]string{".dockerenv": ""}
			m.procFiles = map[string]string{"1/cgroup": "0::/\n", "self/status": dockerCaps}
			m.mountinfo = overlayRoot + cgroupRO
			return m
		}, ui.Warn,
			[]string{"Docker container (/.dockerenv, the root is overlay)", "CAP_SYS_ADMIN no", "seccomp filtering", "/sys/fs/cgroup read-only", "<root steps> make cgroups"},
			[]string{"docker run --privileged --cgroupns=host", "docs/vm.md"}},
		{"Docker, privileged", func(m machine) machine {
			m.rootFiles = map[string]string{".dockerenv": ""}
			m.procFiles = map[string]string{"self/status": allCaps}
			m.mountinfo = overlayRoot + cgroupRW
			return m
		}, Info, []string{"Docker container", "CAP_SYS_ADMIN yes, seccomp off, /sys/fs/cgroup writable", "the steps can run"}, []string{"nothing to do"}},
		{"Docker on cgroup v1, seen by PID 1's cgroup", func(m machine) machine {
			m.procFiles = map[string]string{"self/status": dockerCaps,
				"1/cgroup": "12:memory:/docker/3f2a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718\n"}
			return m
		}, ui.Warn, []string{"Docker container (PID 1 is in the cgroup /docker/3f2a4b5c6d7e)"}, []string{"--privileged"}},
		{"Docker Desktop", func(m machine) machine {
			m.release = "6.10.14-linuxkit"
			m.rootFiles = map[string]string{".dockerenv": ""}
			m.procFiles = map[string]string{"self/status": dockerCaps}
			m.mountinfo = overlayRoot + cgroupRO
			return m
		}, ui.Warn, []string{"Docker container (/.dockerenv, the root is overlay), in Docker Desktop's VM (Linux 6.10.14-linuxkit)"}, []string{"--privileged"}},
		{"Docker in WSL2", func(m machine) machine {
			m.release = wsl2
			m.rootFiles = map[string]string{".dockerenv": ""}
			m.procFiles = map[string]string{"self/status": dockerCaps}
			m.mountinfo = overlayRoot + cgroupRO
			return m
		}, ui.Warn, []string{"Docker container (/.dockerenv, the root is overlay), in WSL2 (Linux " + wsl2 + ")"}, []string{"--privileged"}},
		{"Podman", func(m machine) machine {
			m.rootFiles = map[string]string{"run/.containerenv": "engine=\"podman-4.3.1\"\n"}
			m.procFiles = map[string]string{"self/status": dockerCaps}
			m.mountinfo = overlayRoot + cgroupRO
			return m
		}, ui.Warn, []string{"Podman container (/run/.containerenv, the root is overlay)"}, []string{"podman run --privileged"}},
		{"systemd-nspawn", func(m machine) machine {
			m.rootFiles = map[string]string{"run/systemd/container": "systemd-nspawn\n"}
			m.procFiles = map[string]string{"1/environ": "container=systemd-nspawn\x00TERM=xterm\x00", "self/status": nspawnCaps}
			return m
		}, Info, []string{"a systemd-nspawn guest (container=systemd-nspawn in the environment of PID 1, /run/systemd/container says systemd-nspawn)", "CAP_SYS_ADMIN yes"}, nil},
		{"systemd-nspawn, PID 1's environment unreadable", func(m machine) machine {
			m.rootFiles = map[string]string{"run/systemd/container": "systemd-nspawn\n"}
			m.procFiles = map[string]string{"self/status": dockerCaps}
			return m
		}, ui.Warn, []string{"a systemd-nspawn guest (/run/systemd/container says systemd-nspawn)"}, []string{"systemd-nspawn --boot --capability=CAP_SYS_ADMIN"}},
		{"LXC", func(m machine) machine {
			m.procFiles = map[string]string{"1/environ": "container=lxc\x00", "self/status": dockerCaps}
			return m
		}, ui.Warn, []string{"LXC container"}, []string{"security.nesting=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, envRow(t, tc.m(hybridHost())), tc.level, tc.detail, tc.hint)
		})
	}
}

func TestEnvironmentMachines(t *testing.T) {
	dmi := func(vendor, product string) map[string]string {
		return map[string]string{"class/dmi/id/sys_vendor": vendor + "\n", "class/dmi/id/product_name": product + "\n"}
	}
	for _, tc := range []struct {
		name   string
		m      func(machine) machine
		detail []string
	}{
		{"Lima on Apple's Virtualization.framework", func(m machine) machine {
			m.sysFiles = dmi("Apple Inc.", "Apple Virtualization Generic Platform")
			m.rootFiles = map[string]string{"mnt/lima-cidata/meta-data": "local-hostname: lima-underhood\n",
				"etc/underhood/provisioned": "way=lima\n"}
			return m
		}, []string{"a VM on Apple's Virtualization.framework", "DMI: Apple Inc. Apple Virtualization Generic Platform", "Lima (/mnt/lima-cidata)", "provisioned for the workshop (lima, /etc/underhood/provisioned)"}},
		{"Multipass on QEMU", func(m machine) machine {
			m.sysFiles = dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)")
			m.rootFiles = map[string]string{"etc/underhood/provisioned": "# scripts/provision.sh\nway=multipass\n"}
			return m
		}, []string{"a VM on QEMU/KVM", "provisioned for the workshop (multipass"}},
		{"Multipass on Hyper-V", func(m machine) machine {
			m.sysFiles = dmi("Microsoft Corporation", "Virtual Machine")
			return m
		}, []string{"a VM on Hyper-V"}},
		{"Vagrant on VirtualBox", func(m machine) machine {
			m.sysFiles = dmi("innotek GmbH", "VirtualBox")
			m.rootFiles = map[string]string{"home/vagrant/.profile": ""}
			return m
		}, []string{"a VM on VirtualBox (DMI: innotek GmbH VirtualBox)", "Vagrant (/home/vagrant)"}},
		{"a cloud VM", func(m machine) machine {
			m.sysFiles = dmi("Amazon EC2", "t3.medium")
			return m
		}, []string{"a VM on Amazon EC2"}},
		{"a microVM made from a container image", func(m machine) machine {
			m.rootFiles = map[string]string{".dockerenv": ""}
			m.procFiles = map[string]string{"cpuinfo": "processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor lahf_lm\n", "1/cgroup": "0::/\n"}
			m.mountinfo = private
			return m
		}, []string{"a VM (the CPU's hypervisor flag) naming no hypervisor", "Firecracker", "/.dockerenv exists, but / is ext4 on the disk /dev/vda", "not a container"}},
		{"a laptop", func(m machine) machine {
			m.sysFiles = dmi("LENOVO", "20XW")
			return m
		}, []string{"no sign of a VM: LENOVO 20XW"}},
		{"nothing to tell", func(m machine) machine { return m }, []string{"no sign of a VM or a container"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, envRow(t, tc.m(hybridHost())), ui.OK, tc.detail, nil)
		})
	}
}

// minimalELF is the header of a static ELF executable for machine, which
// is all CheckStaticFor reads.
func minimalELF(m uint16) []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], m)
	binary.LittleEndian.PutUint32(b[20:], 1)
	binary.LittleEndian.PutUint64(b[24:], 0x400000)
	binary.LittleEndian.PutUint16(b[52:], 64)
	binary.LittleEndian.PutUint16(b[54:], 56)
	binary.LittleEndian.PutUint16(b[58:], 64)
	return b
}

func TestArchitecture(t *testing.T) {
	arch := func(t *testing.T, m machine, busybox []byte) Check {
		o := m.options(t)
		if busybox != nil {
			p := filepath.Join(o.FileRoot, "bin/busybox")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, busybox, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return find(t, Run(o), "architecture")
	}
	const aarch64, x86 = 183, 62
	t.Run("x86_64", func(t *testing.T) {
		want(t, arch(t, hybridHost(), nil), ui.OK, []string{"x86_64 (underhood built for amd64): <download step> fetches BusyBox 1.35.0 for x86_64 from busybox.net"}, nil)
	})
	m := hybridHost()
	m.machine, m.goarch = "aarch64", "arm64"
	t.Run("aarch64 with the distribution's BusyBox", func(t *testing.T) {
		want(t, arch(t, m, minimalELF(aarch64)), Info, []string{"aarch64 (underhood built for arm64): busybox.net has no pinned BusyBox", "static one is at /bin/busybox"},
			[]string{"<download> --from /bin/busybox"})
	})
	t.Run("aarch64 with an x86_64 BusyBox", func(t *testing.T) {
		want(t, arch(t, m, minimalELF(x86)), ui.Warn, []string{"no static BusyBox is at /bin/busybox or /usr/bin/busybox"},
			[]string{"apt-get install busybox-static", "<download> --from /bin/busybox"})
	})
	t.Run("aarch64 without BusyBox", func(t *testing.T) {
		want(t, arch(t, m, nil), ui.Warn, []string{"no pinned BusyBox"}, []string{"busybox-static"})
	})
	t.Run("an amd64 build on aarch64", func(t *testing.T) {
		e := m
		e.goarch = "amd64"
		want(t, arch(t, e, nil), ui.Warn, []string{"the kernel is aarch64, but underhood is built for amd64", "emulated"}, []string{"scripts/provision.sh"})
	})
}

func TestRootWithoutSudo(t *testing.T) {
	m := hybridHost()
	m.noSudo = true
	o := m.options(t)
	want(t, find(t, Run(o), "running as root"), ui.Warn, []string{"uid 1000, and no sudo on this machine"}, []string{"su -", "<doctor as root>"})
	o.Euid = 0
	want(t, find(t, Run(o), "running as root"), ui.OK, []string{"uid 0, and no sudo on this machine", "without its leading sudo"}, nil)
}
