package cgroup

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const magicExt4 = 0xef53

// fakeFS builds dirs under a temp root and answers statfs from a table of
// relative path to magic; other existing paths are ext4, missing ones ENOENT.
func fakeFS(t *testing.T, types map[string]int64, files map[string]string) (string, func(string) (int64, error)) {
	t.Helper()
	root := t.TempDir()
	for rel := range types {
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for rel, v := range files {
		write(t, filepath.Join(root, rel), v)
	}
	return root, func(p string) (int64, error) {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatalf("statfs outside the fake tree: %s", p)
		}
		if m, ok := types[rel]; ok {
			return m, nil
		}
		if _, err := os.Stat(p); err != nil {
			return 0, &fs.PathError{Op: "statfs", Path: p, Err: syscall.ENOENT}
		}
		return magicExt4, nil
	}
}

func TestDetectWith(t *testing.T) {
	tests := []struct {
		name       string
		types      map[string]int64
		files      map[string]string
		layout     Layout
		memRel     string // MemoryRoot relative to root; "-" for none
		memVersion int
		unifiedRel string // "-" for none
	}{
		{
			name:   "v2 with memory",
			types:  map[string]int64{".": magicCgroup2},
			files:  map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n"},
			layout: V2, memRel: ".", memVersion: 2, unifiedRel: ".",
		},
		{
			name:   "v2 without memory",
			types:  map[string]int64{".": magicCgroup2},
			files:  map[string]string{"cgroup.controllers": "cpu io pids\n"},
			layout: V2, memRel: "-", unifiedRel: ".",
		},
		{
			name: "hybrid, memory on v1 (this lab's VM)",
			types: map[string]int64{".": magicTmpfs, "unified": magicCgroup2,
				"memory": magicCgroup1, "pids": magicCgroup1, "systemd": magicCgroup1},
			files:  map[string]string{"unified/cgroup.controllers": "hugetlb\n"},
			layout: Hybrid, memRel: "memory", memVersion: 1, unifiedRel: "unified",
		},
		{
			name:   "hybrid, memory moved to the unified tree",
			types:  map[string]int64{".": magicTmpfs, "unified": magicCgroup2, "pids": magicCgroup1},
			files:  map[string]string{"unified/cgroup.controllers": "memory\n"},
			layout: Hybrid, memRel: "unified", memVersion: 2, unifiedRel: "unified",
		},
		{
			name:   "v1",
			types:  map[string]int64{".": magicTmpfs, "memory": magicCgroup1, "cpu,cpuacct": magicCgroup1},
			layout: V1, memRel: "memory", memVersion: 1, unifiedRel: "-",
		},
		{
			name:   "v1 without memory",
			types:  map[string]int64{".": magicTmpfs, "cpu": magicCgroup1, "memory": magicTmpfs},
			layout: V1, memRel: "-", unifiedRel: "-",
		},
		{
			name:   "empty tmpfs",
			types:  map[string]int64{".": magicTmpfs, "memory": magicExt4},
			layout: None, memRel: "-", unifiedRel: "-",
		},
		{
			name:   "nothing mounted (sysfs)",
			types:  map[string]int64{".": 0x62656572},
			layout: None, memRel: "-", unifiedRel: "-",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, fsType := fakeFS(t, tc.types, tc.files)
			h, err := DetectWith(root, fsType)
			if err != nil {
				t.Fatal(err)
			}
			rel := func(s string) string {
				if s == "-" {
					return ""
				}
				return filepath.Join(root, s)
			}
			want := Host{Root: root, Layout: tc.layout, MemoryRoot: rel(tc.memRel),
				MemoryVersion: tc.memVersion, Unified: rel(tc.unifiedRel)}
			if h != want {
				t.Errorf("DetectWith:\n got %+v\nwant %+v", h, want)
			}
		})
	}
}

func TestDetectWithMissingRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "cgroup")
	h, err := DetectWith(missing, StatfsType)
	if err != nil || h.Layout != None || h.MemoryVersion != 0 {
		t.Errorf("DetectWith(missing) = %+v, %v; want layout none, no error", h, err)
	}
}

func TestDetectWithError(t *testing.T) {
	_, err := DetectWith("/x", func(p string) (int64, error) {
		return 0, &fs.PathError{Op: "statfs", Path: p, Err: syscall.EACCES}
	})
	if err == nil || err.Error() != "detect cgroup layout: statfs /x: permission denied" {
		t.Errorf("err = %v", err)
	}
}
