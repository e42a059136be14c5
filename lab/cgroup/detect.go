package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Filesystem magic numbers, as statfs(2) reports them in f_type.
const (
	magicCgroup2 = unix.CGROUP2_SUPER_MAGIC
	magicCgroup1 = unix.CGROUP_SUPER_MAGIC
	magicTmpfs   = unix.TMPFS_MAGIC
)

// Detect reads the cgroup layout mounted at root (normally /sys/fs/cgroup)
// with statfs(2).
func Detect(root string) (Host, error) { return DetectWith(root, StatfsType) }

// StatfsType is statfs(2)'s f_type for path: the filesystem magic number.
func StatfsType(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	return int64(st.Type), nil
}

// DetectWith is Detect with the filesystem-type probe given, so that tests
// can describe a fake tree: root on cgroup2 is V2; root on tmpfs with
// root/unified on cgroup2 is Hybrid; root on tmpfs with v1 hierarchies below
// it is V1; anything else is None. The memory controller is a v1 hierarchy at
// root/memory, or "memory" in the cgroup2 root's cgroup.controllers.
//
// A missing root is Layout None without an error.
func DetectWith(root string, fsType func(path string) (int64, error)) (Host, error) {
	root = filepath.Clean(root)
	h := Host{Root: root, Layout: None}
	t, err := fsType(root)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("detect cgroup layout: %w", err)
	}
	switch t {
	case magicCgroup2:
		h.Layout, h.Unified = V2, root
		ok, err := hasController(root, "memory")
		if err != nil {
			return h, fmt.Errorf("detect memory controller: %w", err)
		}
		if ok {
			h.MemoryRoot, h.MemoryVersion = root, 2
		}
		return h, nil
	case magicTmpfs:
	default:
		return h, nil // e.g. plain sysfs: nothing is mounted here
	}

	unified := filepath.Join(root, "unified")
	isV2, err := isFS(fsType, unified, magicCgroup2)
	if err != nil {
		return h, fmt.Errorf("detect cgroup layout: %w", err)
	}
	if isV2 {
		h.Layout, h.Unified = Hybrid, unified
	} else {
		found, err := anyV1(root, fsType)
		if err != nil {
			return h, fmt.Errorf("detect cgroup layout: %w", err)
		}
		if !found {
			return h, nil
		}
		h.Layout = V1
	}

	mem := filepath.Join(root, "memory")
	isV1, err := isFS(fsType, mem, magicCgroup1)
	if err != nil {
		return h, fmt.Errorf("detect memory controller: %w", err)
	}
	switch {
	case isV1:
		h.MemoryRoot, h.MemoryVersion = mem, 1
	case h.Layout == Hybrid:
		// Memory taken off v1 (cgroup_no_v1=memory) lands on the unified tree.
		ok, err := hasController(unified, "memory")
		if err != nil {
			return h, fmt.Errorf("detect memory controller: %w", err)
		}
		if ok {
			h.MemoryRoot, h.MemoryVersion = unified, 2
		}
	}
	return h, nil
}

func isFS(fsType func(string) (int64, error), path string, magic int64) (bool, error) {
	t, err := fsType(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t == magic, nil
}

func anyV1(root string, fsType func(string) (int64, error)) (bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		ok, err := isFS(fsType, filepath.Join(root, e.Name()), magicCgroup1)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// hasController reports whether name is listed in dir/cgroup.controllers.
func hasController(dir, name string) (bool, error) {
	set, err := readWords(filepath.Join(dir, "cgroup.controllers"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return set[name], nil
}

// readWords reads a space-separated list file (cgroup.controllers,
// cgroup.subtree_control) into a set.
func readWords(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, w := range strings.Fields(string(b)) {
		set[w] = true
	}
	return set, nil
}
