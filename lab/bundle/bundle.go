// Package bundle writes an OCI runtime bundle (config.json beside a rootfs
// directory) that describes the learner's hand-made container in the
// runtime spec's terms, so runc or crun can run the same thing.
package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options is what the learner's steps decided about the container.
type Options struct {
	Name     string   // container and cgroup name
	Args     []string // the payload
	Env      []string
	Hostname string
	Network  bool  // a network namespace of its own (only lo)
	Memory   int64 // bytes; 0: no limit
	Pids     int64 // 0: no limit
}

// CgroupsPath is where runc's fs (cgroupfs) driver puts the container: an
// absolute path is taken from each hierarchy's root, so on v1 it is
// memory/underhood/<name>, pids/underhood/<name>..., on v2 underhood/<name>.
// The systemd driver would want "slice:prefix:name" instead; runc and crun
// use cgroupfs unless told --systemd-cgroup.
func CgroupsPath(name string) string { return "/underhood/" + name }

// ociVersion is written instead of specs.Version: every field used here is
// in runtime-spec 1.0, and crun before 1.9 (Debian 12 ships 1.8) refuses a
// config whose version is not 1.0.x ("unknown version specified").
const ociVersion = "1.0.2"

// Spec is the config.json for opts, rootfs "rootfs" beside it.
func Spec(o Options) *specs.Spec {
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.IPCNamespace}}
	if o.Network {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return &specs.Spec{
		Version:  ociVersion,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: o.Hostname,
		Process: &specs.Process{
			Terminal: false, Args: o.Args, Env: o.Env, Cwd: "/",
			Capabilities:    capabilities(),
			NoNewPrivileges: true,
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Mounts: mounts(),
		Linux: &specs.Linux{
			Namespaces:    ns,
			CgroupsPath:   CgroupsPath(o.Name),
			Resources:     resources(o),
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// Write creates dir/config.json for spec. The rootfs is the caller's:
// dir/rootfs must exist (from umoci unpack or image.Unpack).
func Write(dir string, spec *specs.Spec) error {
	if fi, err := os.Stat(filepath.Join(dir, spec.Root.Path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("bundle %s: no root filesystem directory %s", dir, spec.Root.Path)
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bundle config: %w", err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
