// Package nettest keeps the network tests honest: they must leave the
// machine's own interfaces, addresses and routes as they found them, and no
// network namespace of theirs behind.
package nettest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Snapshot is the machine's network as ip(8) shows it: links, addresses,
// IPv4 and IPv6 routes, of the namespace the test process is in.
type Snapshot map[string]string

// Take reads the snapshot; the test fails without ip(8).
func Take(t testing.TB) Snapshot {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the network tests compare 'ip -j' before and after: install iproute2 (%v)", err)
	}
	s := Snapshot{}
	for _, args := range [][]string{{"-j", "link"}, {"-j", "addr"}, {"-j", "route", "show", "table", "all"}, {"-j", "-6", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
		}
		s["ip "+strings.Join(args, " ")] = stable(out)
	}
	return s
}

// stable drops what changes by itself: an address's remaining lifetime.
func stable(out []byte) string {
	var v any
	if json.Unmarshal(out, &v) != nil {
		return string(out)
	}
	var drop func(any)
	drop = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "valid_life_time")
			delete(x, "preferred_life_time")
			for _, e := range x {
				drop(e)
			}
		case []any:
			for _, e := range x {
				drop(e)
			}
		}
	}
	drop(v)
	b, _ := json.Marshal(v)
	return string(bytes.TrimSpace(b))
}

// Unchanged fails the test if the machine's network differs from before,
// waiting a little: the kernel removes a veth pair asynchronously.
func Unchanged(t testing.TB, before Snapshot) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		now := Take(t)
		var diff []string
		for k, v := range before {
			if now[k] != v {
				diff = append(diff, k+":\n    before: "+v+"\n    after:  "+now[k])
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the machine's network changed:\n  %s", strings.Join(diff, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Gone fails the test if a network namespace (ids as "net:[N]") is still
// held by a process or by one of this process's descriptors.
func Gone(t testing.TB, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		held := holders(ids)
		if len(held) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("network namespaces left: %s", strings.Join(held, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func holders(ids []string) []string {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var held []string
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, p := range append(links, fds...) {
		if l, err := os.Readlink(p); err == nil && want[l] {
			held = append(held, l+" ("+p+")")
		}
	}
	return held
}
