package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// runtimeBench makes an OCI bundle of the same root and a bench entry that
// runs it with an OCI runtime (runc or crun, by path), in a cgroup under
// the one parent named underhood.
func runtimeBench(runtime, tmp, root string) (*bench, func(), error) {
	name := filepath.Base(runtime)
	bundle := filepath.Join(tmp, name+"-bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return nil, nil, err
	}
	if out, err := exec.Command(runtime, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("%s spec: %v: %s", name, err, out)
	}
	p := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, nil, err
	}
	spec["root"] = map[string]any{"path": root, "readonly": false}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/busybox", "true"}
	linux := spec["linux"].(map[string]any)
	linux["resources"] = map[string]any{"memory": map[string]any{"limit": 7340032}}
	linux["cgroupsPath"] = "/underhood/" + name + "-bench"
	// Each run needs its own container id; the wrapper below gives one.
	raw, _ = json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		return nil, nil, err
	}
	wrapper := filepath.Join(tmp, name+"-run.sh")
	state := filepath.Join(tmp, name+"-state")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --root %s run --bundle %s uh-bench-$$\n", runtime, state, bundle)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return nil, nil, err
	}
	// The parents runc makes in each v1 hierarchy are removed at the end
	// when they are empty and were not there before.
	var before []string
	for _, d := range cgroupParents() {
		if _, err := os.Stat(d); err == nil {
			before = append(before, d)
		}
	}
	cleanup := func() {
		for _, d := range cgroupParents() {
			if !contains(before, d) {
				_ = os.Remove(filepath.Join(d, name+"-bench"))
				_ = os.Remove(d)
			} else {
				_ = os.Remove(filepath.Join(d, name+"-bench"))
			}
		}
	}
	return &bench{Name: name + " run", Group: "life", Argv: []string{"/bin/sh", wrapper},
		Note: name + " on an OCI bundle of the same root (through a one-line sh wrapper for a fresh id)"}, cleanup, nil
}

func cgroupParents() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	out := []string{"/sys/fs/cgroup/underhood"}
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), "underhood"))
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
