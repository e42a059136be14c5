package inspect

import (
	"os"
	"os/exec"
	"testing"
)

// The inspector against the tools it replaces, on this host: run
// 'go test -bench . ./lab/inspect' to see the ratio in one run.

func hostSources(b *testing.B) Sources {
	b.Helper()
	src, err := Default(nil)
	if err != nil {
		b.Skip(err)
	}
	if _, err := HostOverview(src); err != nil {
		b.Skipf("needs root to read every process's namespaces: %v", err)
	}
	return src
}

// BenchmarkHostOverview is 'underhood inspect' without a target: every
// process's eight namespace links, as lsns reads them.
func BenchmarkHostOverview(b *testing.B) {
	src := hostSources(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := HostOverview(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInspectSelf inspects the test process itself: all four sections.
func BenchmarkInspectSelf(b *testing.B) {
	src := hostSources(b)
	pid := os.Getpid()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Inspect(src, pid); err != nil {
			b.Fatal(err)
		}
	}
}

func benchExec(b *testing.B, name string, args ...string) {
	path, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("%s not installed: %v", name, err)
	}
	for b.Loop() {
		if err := exec.Command(path, args...).Run(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
}

// BenchmarkLsns runs util-linux's lsns once per iteration.
func BenchmarkLsns(b *testing.B) { benchExec(b, "lsns") }

// BenchmarkPsE runs procps's ps -e once per iteration.
func BenchmarkPsE(b *testing.B) { benchExec(b, "ps", "-e") }
