package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	userUID = 1000
	userPID = 4242
)

// owners makes ownerOf answer from a table of paths below root (the
// fixture's files all belong to whoever runs the test): a path is the
// uid of its nearest listed ancestor, root's where none is listed.
func owners(t *testing.T, root string, of map[string]int) {
	t.Helper()
	old := ownerOf
	t.Cleanup(func() { ownerOf = old })
	ownerOf = func(path string) (int, error) {
		if _, err := old(path); err != nil {
			return -1, err
		}
		for p := path; ; p = filepath.Dir(p) {
			rel, _ := filepath.Rel(root, p)
			if uid, ok := of[rel]; ok {
				return uid, nil
			}
			if p == root || p == "/" {
				return 0, nil
			}
		}
	}
}

// v2Tree is a fake cgroup2 mount: root hands memory and pids down to
// underhood, and the user has a systemd scope delegated to it below
// user.slice, holding the user's shell or underhood.
func v2Tree(t *testing.T, scopeProcs string) (Host, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []struct{ dir, controllers, subtree, procs string }{
		{".", "cpu memory pids", "cpu memory pids", "1\n"},
		{"underhood", "cpu memory pids", "cpu memory pids", ""},
		{"user.slice", "cpu memory pids", "memory pids", ""},
		{"user.slice/session-1.scope", "memory pids", "", "77\n"},
		{"user.slice/app.slice", "memory pids", "memory pids", ""},
		{"user.slice/app.slice/run-r1.scope", "memory pids", "", scopeProcs},
	} {
		dir := filepath.Join(root, d.dir)
		write(t, filepath.Join(dir, "cgroup.controllers"), d.controllers)
		write(t, filepath.Join(dir, "cgroup.subtree_control"), d.subtree)
		write(t, filepath.Join(dir, "cgroup.procs"), d.procs)
	}
	owners(t, root, map[string]int{"user.slice/app.slice": userUID})
	return Host{Root: root, Layout: V2, MemoryRoot: root, MemoryVersion: 2, Unified: root}, root
}

func TestDelegatedOwnScope(t *testing.T) {
	h, root := v2Tree(t, "4242\n")
	scope := filepath.Join(root, "user.slice/app.slice/run-r1.scope")
	u := User{UID: userUID, PID: userPID, Cgroup: "/user.slice/app.slice/run-r1.scope"}
	d, err := Delegated(h, DefaultParent, u, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host.MemoryRoot != scope || d.Host.Base != scope || d.Host.Mount() != root || d.Parent != DefaultParent ||
		!d.Settle || !d.Pids || d.CPU {
		t.Errorf("Delegated = %+v; want below %s, settling, pids and no cpu", d, scope)
	}
	m, err := New(d.Host, d.Parent, "box")
	if err != nil || m.Path() != filepath.Join(scope, "underhood/box") {
		t.Errorf("the run's cgroup: %v %v", m, err)
	}
	// Not allowed to fall back on its own cgroup (--cgroup-parent given):
	// root's underhood is not the user's.
	_, err = Delegated(h, DefaultParent, u, false)
	var nd *NotDelegatedError
	if !errors.As(err, &nd) || nd.Own || nd.Error() != filepath.Join(root, "underhood")+" is not delegated to you (owned by uid 0)" {
		t.Errorf("without own: %v", err)
	}
}

func TestDelegatedRefusals(t *testing.T) {
	scope := "/user.slice/app.slice/run-r1.scope"
	for _, tc := range []struct {
		name, procs, cgroup string
		owned               map[string]int
		want                string
	}{
		{"the root cgroup", "", "/", nil, "your cgroup / is the root cgroup, not one delegated to you"},
		{"a login session: root's", "", "/user.slice/session-1.scope", nil,
			"your cgroup /user.slice/session-1.scope is not delegated to you (owned by uid 0)"},
		{"a shell beside underhood", "4242\n88\n", scope, nil,
			"your cgroup " + scope + " holds other processes than underhood, and cgroup v2 hands controllers down only from a cgroup without any"},
		{"procs not chowned", "4242\n", scope, map[string]int{"user.slice/app.slice/run-r1.scope/cgroup.procs": 0},
			"your cgroup " + scope + " is yours, but its cgroup.procs is not delegated to you (owned by uid 0)"},
		{"subtree_control not chowned", "4242\n", scope, map[string]int{"user.slice/app.slice/run-r1.scope/cgroup.subtree_control": 0},
			"your cgroup " + scope + " is yours, but its cgroup.subtree_control is not delegated to you (owned by uid 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, root := v2Tree(t, tc.procs)
			of := map[string]int{"user.slice/app.slice": userUID}
			for k, v := range tc.owned {
				of[k] = v
			}
			owners(t, root, of)
			_, err := Delegated(h, DefaultParent, User{UID: userUID, PID: userPID, Cgroup: tc.cgroup}, true)
			var nd *NotDelegatedError
			if !errors.As(err, &nd) || !nd.Own || nd.Error() != tc.want {
				t.Errorf("Delegated: %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A parent root made and gave the user (--cgroup-parent): usable from
// where the user is only if the user may move processes there, and if
// root's cgroups above it hand memory down.
func TestDelegatedParentV2(t *testing.T) {
	h, root := v2Tree(t, "4242\n")
	write(t, filepath.Join(root, "underhood/alice/cgroup.controllers"), "cpu memory pids")
	write(t, filepath.Join(root, "underhood/alice/cgroup.subtree_control"), "")
	write(t, filepath.Join(root, "underhood/alice/cgroup.procs"), "")
	owners(t, root, map[string]int{"user.slice/app.slice": userUID, "underhood/alice": userUID})
	inScope := User{UID: userUID, PID: userPID, Cgroup: "/user.slice/app.slice/run-r1.scope"}
	_, err := Delegated(h, "underhood/alice", inScope, false)
	want := "cannot take your processes: moving them there from " + filepath.Join(root, "user.slice/app.slice/run-r1.scope") +
		" needs write access to " + root + "/cgroup.procs, their common ancestor's, which is not delegated to you (owned by uid 0)"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("from another subtree: %v\nwant …%s", err, want)
	}

	// The user's process inside it (as root put it there): underhood
	// settles out of it, and the run goes beside it.
	write(t, filepath.Join(root, "underhood/alice/cgroup.procs"), "4242\n")
	in := User{UID: userUID, PID: userPID, Cgroup: "/underhood/alice"}
	d, err := Delegated(h, "underhood/alice", in, false)
	if err != nil || d.Host.Base != "" || d.Parent != "underhood/alice" || !d.Settle || !d.Pids || !d.CPU {
		t.Errorf("from inside: %+v, %v", d, err)
	}
	// A deeper parent the user makes itself.
	if d, err := Delegated(h, "underhood/alice/lab", in, false); err != nil || d.Parent != "underhood/alice/lab" || !d.Settle {
		t.Errorf("a parent below it: %+v, %v", d, err)
	}

	// Root's cgroup on the way hands no memory down.
	write(t, filepath.Join(root, "underhood/cgroup.subtree_control"), "pids")
	_, err = Delegated(h, "underhood/alice", in, false)
	if err == nil || !strings.HasSuffix(err.Error(), "underhood hands no memory controller down (cgroup.subtree_control), and is root's to change") {
		t.Errorf("no memory handed down: %v", err)
	}
}

func TestDelegatedV1(t *testing.T) {
	k := newFakeKernel(t, 1)
	h := k.host()
	for _, c := range []string{"pids", "cpu"} {
		write(t, filepath.Join(h.Root, c, "cgroup.procs"), "")
		write(t, filepath.Join(h.Root, c, "underhood/alice/cgroup.procs"), "")
	}
	write(t, filepath.Join(k.root, "underhood/alice/cgroup.procs"), "")
	mem := filepath.Base(k.root) // the fake's memory hierarchy, beside pids and cpu
	owners(t, h.Root, map[string]int{mem + "/underhood/alice": userUID, "pids/underhood/alice": userUID})
	u := User{UID: userUID, PID: userPID}
	for _, parent := range []string{"underhood/alice", "underhood/alice/lab"} {
		d, err := Delegated(h, parent, u, true)
		if err != nil || d.Parent != parent || d.Settle || !d.Pids || d.CPU {
			t.Errorf("%s: %+v, %v; want memory and pids, not cpu", parent, d, err)
		}
	}
	_, err := Delegated(h, "underhood", u, true)
	var nd *NotDelegatedError
	if !errors.As(err, &nd) || nd.Own || nd.Error() != filepath.Join(k.root, "underhood")+" is not delegated to you (owned by uid 0)" {
		t.Errorf("root's parent: %v", err)
	}
	if _, err := Delegated(h, "elsewhere", u, true); err == nil || errors.As(err, &nd) {
		t.Errorf("a parent not below underhood: %v, want a usage error", err)
	}
}

// Settle moves underhood into a leaf beside the run's cgroup, making the
// parent on the way; the run's Create then turns the controllers on, and
// Return turns them off, deepest first, moves underhood back, and removes
// what Settle made.
func TestSettleAndReturn(t *testing.T) {
	k := newFakeKernel(t, 2)
	scope := filepath.Join(k.root, "app.slice/run-r1.scope")
	k.populate(filepath.Join(k.root, "app.slice"))
	write(t, filepath.Join(k.root, "app.slice/cgroup.controllers"), "cpu memory pids")
	k.populate(scope)
	write(t, filepath.Join(scope, "cgroup.controllers"), "memory pids")
	write(t, filepath.Join(scope, "cgroup.procs"), "4242\n")
	u := User{UID: userUID, PID: userPID, Cgroup: "/app.slice/run-r1.scope"}
	h := k.host().Below(scope)

	s, err := settle(h, DefaultParent, "box", u, k.ops())
	if err != nil {
		t.Fatal(err)
	}
	if s.Leaf() != filepath.Join(scope, "underhood/_box") || read(t, filepath.Join(s.Leaf(), "cgroup.procs")) != "4242\n" {
		t.Errorf("leaf %s holds %q", s.Leaf(), read(t, filepath.Join(s.Leaf(), "cgroup.procs")))
	}
	write(t, filepath.Join(scope, "cgroup.procs"), "") // the kernel moved it
	m := withOps(mustNew(t, h, DefaultParent, "box"), k.ops())
	if err := m.Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(s.Leaf(), "cgroup.procs"), "")
	k.writes = nil
	if err := s.Return(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app.slice/run-r1.scope/underhood/cgroup.subtree_control=-memory -pids",
		"app.slice/run-r1.scope/cgroup.subtree_control=-memory -pids",
		"app.slice/run-r1.scope/cgroup.procs=4242",
	}
	if !slices.Equal(k.writes, want) {
		t.Errorf("Return writes:\n got %q\nwant %q", k.writes, want)
	}
	if exists(filepath.Join(scope, "underhood")) {
		t.Error("Return left what Settle made")
	}
}

func TestSettleRefuses(t *testing.T) {
	k := newFakeKernel(t, 2)
	scope := filepath.Join(k.root, "run-r1.scope")
	k.populate(scope)
	h := k.host().Below(scope)
	for _, tc := range []struct {
		name, procs string
		u           User
		want        string
	}{
		{"a shell beside it", "4242\n88\n", User{UID: userUID, PID: userPID, Cgroup: "/run-r1.scope"}, "holds other processes than underhood"},
		{"not on the way", "4242\n", User{UID: userUID, PID: userPID, Cgroup: "/elsewhere"}, "is not on the way to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, filepath.Join(scope, "cgroup.procs"), tc.procs)
			k.writes = nil
			if _, err := settle(h, DefaultParent, "box", tc.u, k.ops()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("settle: %v, want …%s", err, tc.want)
			}
			if len(k.writes) != 0 || exists(filepath.Join(scope, "underhood")) {
				t.Errorf("it changed something: %q", k.writes)
			}
		})
	}
}

// A failed move leaves nothing of Settle's behind.
func TestSettleUndoesAFailedMove(t *testing.T) {
	k := newFakeKernel(t, 2)
	scope := filepath.Join(k.root, "run-r1.scope")
	k.populate(scope)
	write(t, filepath.Join(scope, "cgroup.procs"), "4242\n")
	ops := k.ops()
	ops.write = func(p, v string) error { return &os.PathError{Op: "write", Path: p, Err: os.ErrPermission} }
	_, err := settle(k.host().Below(scope), DefaultParent, "box", User{UID: userUID, PID: userPID, Cgroup: "/run-r1.scope"}, ops)
	if err == nil || !strings.Contains(err.Error(), "move underhood (pid 4242) into "+filepath.Join(scope, "underhood/_box")) {
		t.Errorf("settle: %v", err)
	}
	if exists(filepath.Join(scope, "underhood")) {
		t.Error("a failed Settle left its cgroups")
	}
}

func TestOpenBase(t *testing.T) {
	h, root := v2Tree(t, "")
	scope := filepath.Join(root, "user.slice/app.slice/run-r1.scope")
	if err := os.Symlink(scope, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if got, err := OpenBase(h, scope, userUID); err != nil || got.MemoryRoot != scope || got.Base != scope {
		t.Errorf("the owner's scope: %+v, %v", got, err)
	}
	if got, err := OpenBase(h, filepath.Join(root, "user.slice/gone.scope"), userUID); err != nil || got.Base == "" {
		t.Errorf("a scope that is gone: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name, base string
		uid        int
		want       string
	}{
		{"another user's", scope, userUID + 1, "owned by uid 1000, not by the run's owner (uid 1001)"},
		{"root's run", scope, 0, "the run is root's"},
		{"root's cgroup", filepath.Join(root, "user.slice"), userUID, "owned by uid 0"},
		{"the hierarchy's root", root, userUID, "not below"},
		{"outside", "/etc", userUID, "not below"},
		{"dot-dot", root + "/user.slice/../underhood", userUID, "not a clean absolute path"},
		{"relative", "user.slice", userUID, "not a clean absolute path"},
		{"through a link", filepath.Join(root, "link"), userUID, "is not a directory"},
		{"a control file", filepath.Join(root, "user.slice/cgroup.procs"), userUID, "control files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := OpenBase(h, tc.base, tc.uid); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenBase(%s, %d): %v, want …%s", tc.base, tc.uid, err, tc.want)
			}
		})
	}
	v1 := Host{Root: root, Layout: V1, MemoryRoot: root, MemoryVersion: 1}
	if _, err := OpenBase(v1, scope, userUID); err == nil {
		t.Error("a base on cgroup v1 was followed")
	}
}

func TestSelf(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cgroup")
	write(t, f, "12:memory:/x\n0::/user.slice/app.slice/run-r1.scope\n")
	old := procSelfCgroup
	procSelfCgroup = f
	t.Cleanup(func() { procSelfCgroup = old })
	if u := Self(); u.Cgroup != "/user.slice/app.slice/run-r1.scope" || u.PID != os.Getpid() || u.UID != os.Geteuid() {
		t.Errorf("Self = %+v", u)
	}
}

// pids (a threaded controller) may be on already in a cgroup with a
// process in it: Return leaves it as Settle found it.
func TestReturnLeavesWhatWasOn(t *testing.T) {
	k := newFakeKernel(t, 2)
	scope := filepath.Join(k.root, "run-r1.scope")
	k.populate(scope)
	write(t, filepath.Join(scope, "cgroup.controllers"), "memory pids")
	write(t, filepath.Join(scope, "cgroup.subtree_control"), "pids")
	write(t, filepath.Join(scope, "cgroup.procs"), "4242\n")
	h := k.host().Below(scope)
	s, err := settle(h, DefaultParent, "box", User{UID: userUID, PID: userPID, Cgroup: "/run-r1.scope"}, k.ops())
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(scope, "cgroup.procs"), "")
	if err := withOps(mustNew(t, h, DefaultParent, "box"), k.ops()).Create(DefaultLimit); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(scope, "underhood/box")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(s.Leaf(), "cgroup.procs"), "")
	if err := s.Return(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(scope, "cgroup.subtree_control")); got != "pids" {
		t.Errorf("the scope's cgroup.subtree_control = %q after Return, want pids as found", got)
	}
}
