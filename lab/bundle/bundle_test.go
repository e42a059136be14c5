package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSpecDescribesTheContainer(t *testing.T) {
	s := Spec(Options{Name: "c1", Args: []string{"/bin/sh"}, Env: []string{"PATH=/bin"},
		Hostname: "lab", Memory: 64 << 20, Pids: 32})
	var types []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		types = append(types, n.Type)
	}
	if !slices.Equal(types, []specs.LinuxNamespaceType{"pid", "mount", "uts", "ipc"}) {
		t.Errorf("namespaces %v, want pid mount uts ipc (no network unless asked)", types)
	}
	if s.Linux.CgroupsPath != "/underhood/c1" || *s.Linux.Resources.Memory.Limit != 64<<20 ||
		*s.Linux.Resources.Pids.Limit != 32 || s.Process.Terminal || s.Hostname != "lab" {
		t.Errorf("spec = %+v", s.Linux)
	}
	if n := Spec(Options{Network: true}).Linux.Namespaces; n[len(n)-1].Type != specs.NetworkNamespace {
		t.Errorf("Network: true gave namespaces %v", n)
	}
	if r := Spec(Options{}).Linux.Resources; r.Memory != nil || r.Pids != nil {
		t.Errorf("no limits asked, got memory %v pids %v", r.Memory, r.Pids)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Spec(Options{Name: "c"})); err == nil {
		t.Errorf("Write without a rootfs dir succeeded")
	}
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, Spec(Options{Name: "c", Args: []string{"x"}})); err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &back); err != nil || back.Process.Args[0] != "x" || back.Root.Path != "rootfs" {
		t.Errorf("config.json reads back as %+v, %v", back, err)
	}
}
