package cgroup

// A user who is not root may make cgroups only where one is delegated to
// it: given to it, as root or systemd does (Delegate=yes), by owning the
// directory and the files that move processes (cgroup.procs) and hand
// controllers down (cgroup.subtree_control). The kernel's rules then:
//
//   - v1: a process moves into a cgroup for whoever may write that
//     cgroup's cgroup.procs (or tasks) and has the process's uid. A run's
//     cgroup is made by the user, so it needs only a parent it may write.
//   - v2: for whoever may write the destination's cgroup.procs and that of
//     the common ancestor of source and destination, so that a user given
//     two subtrees apart cannot move processes between them; clone3's
//     CLONE_INTO_CGROUP is checked the same way.
//   - v2: a cgroup hands controllers to its children only while it holds
//     no process itself ("no internal processes").

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// User is who asks for a delegated cgroup, as the kernel's rules see it.
type User struct {
	UID int
	PID int // underhood's own process
	// Cgroup is its cgroup in the v2 hierarchy, as the "0::" line of
	// /proc/self/cgroup names it ("/user.slice/…/run-r1.scope"); "" if none.
	Cgroup string
}

// procSelfCgroup is where Self reads underhood's own cgroup.
var procSelfCgroup = "/proc/self/cgroup"

// Self is the calling process as a User.
func Self() User {
	u := User{UID: os.Geteuid(), PID: os.Getpid()}
	b, _ := os.ReadFile(procSelfCgroup)
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			u.Cgroup = p
		}
	}
	return u
}

// Delegation is where a run of a user who is not root gets its cgroup:
// New(Host, Parent, name).
type Delegation struct {
	Host   Host // Host.Base is set when it is below the user's own cgroup
	Parent string
	// Settle: underhood itself is in a cgroup that must hand controllers
	// down to the run's, and must first move out of it (see Settle).
	Settle bool
	// Pids and CPU say whether those controllers are delegated too.
	Pids, CPU bool
}

// NotDelegatedError says why a user has no cgroup for a run's limits.
type NotDelegatedError struct {
	Cgroup string // the cgroup looked at
	Why    string
	// Own: it was the user's own cgroup (v2), which systemd would
	// delegate: 'systemd-run --user --scope -p Delegate=yes CMD'.
	Own bool
}

func (e *NotDelegatedError) Error() string { return e.Cgroup + " " + e.Why }

// ownerOf is the uid that owns path; tests describe owners of a fixture.
var ownerOf = func(path string) (int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return -1, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return int(st.Uid), nil
}

// Delegated finds, without changing anything, where u may make a run's
// cgroup: below parent if that is delegated to u (in the memory hierarchy;
// on v1 in the pids and cpu ones too where they are), or else, with own
// and on cgroup v2, below u's own cgroup when that is delegated to u. An
// error that is a *NotDelegatedError says why there is none.
func Delegated(h Host, parent string, u User, own bool) (Delegation, error) {
	comps, err := parentComponents(parent)
	if err != nil {
		return Delegation{}, fmt.Errorf("cgroup parent %q: %w", parent, err)
	}
	if err := hasMemory(h); err != nil {
		return Delegation{}, fmt.Errorf("delegated cgroup: %w", err)
	}
	var d Delegation
	if h.MemoryVersion == 1 {
		d, err = v1Delegated(h, comps, u)
	} else {
		d, err = v2Delegated(h, comps, u, false)
	}
	var nd *NotDelegatedError
	if err == nil || !own || h.MemoryVersion != 2 || !errors.As(err, &nd) {
		return d, err
	}
	return ownDelegated(h, u)
}

// v1Delegated: the parent's deepest existing directory must be u's, so
// that u may make the rest and the run's cgroup in it.
func v1Delegated(h Host, comps []string, u User) (Delegation, error) {
	dir := deepest(h.MemoryRoot, comps)
	if why, err := notYours(dir, u.UID); why != "" || err != nil {
		if full := filepath.Join(append([]string{h.MemoryRoot}, comps...)...); why != "" && dir != full {
			// The parent is not there: say so, and why you cannot make it.
			why += ", and " + strings.TrimPrefix(full, dir+"/") + " is not there in it for you to use"
		}
		return Delegation{}, orNot(err, dir, why, false)
	}
	d := Delegation{Host: h, Parent: strings.Join(comps, "/")}
	for c, on := range map[string]*bool{"pids": &d.Pids, "cpu": &d.CPU} {
		root := filepath.Join(h.Root, c)
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
			why, err := notYours(deepest(root, comps), u.UID)
			*on = why == "" && err == nil
		}
	}
	return d, nil
}

// ownDelegated: u's own cgroup, when systemd (or root) delegated it to u,
// holds the lab's parent.
func ownDelegated(h Host, u User) (Delegation, error) {
	name := "your cgroup " + u.Cgroup
	if u.Cgroup == "" || u.Cgroup == "/" {
		return Delegation{}, &NotDelegatedError{Cgroup: "your cgroup /", Why: "is the root cgroup, not one delegated to you", Own: true}
	}
	base := filepath.Join(h.Mount(), u.Cgroup)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
		why, err := notYours(filepath.Join(base, f), u.UID)
		if f != "" && why != "" {
			why = "is yours, but its " + f + " " + why
		}
		if why != "" || err != nil {
			return Delegation{}, orNot(err, name, why, true)
		}
	}
	return v2Delegated(h.Below(base), []string{DefaultParent}, u, true)
}

// v2Delegated walks from the memory root down to the parent: a cgroup of
// root's on the way must hand memory down already; from the first of u's
// on, u turns controllers on, so each must be without processes (or hold
// only underhood, which then settles); and u must be allowed to move its
// processes there (the common ancestor's cgroup.procs).
func v2Delegated(h Host, comps []string, u User, own bool) (Delegation, error) {
	dirs := chain(h.MemoryRoot, comps)
	self := ""
	if u.Cgroup != "" {
		self = filepath.Join(h.Mount(), u.Cgroup)
	}
	not := func(dir, why string) error {
		name := dir
		if own && dir == h.MemoryRoot {
			name = "your cgroup " + u.Cgroup
		}
		return &NotDelegatedError{Cgroup: name, Why: why, Own: own}
	}
	first, settle := -1, false
	for i, dir := range dirs {
		uid, err := ownerOf(dir)
		if errors.Is(err, fs.ErrNotExist) && i > 0 {
			if first < 0 {
				return Delegation{}, not(dirs[i-1], fmt.Sprintf("is not delegated to you (owned by uid %d)", must(ownerOf(dirs[i-1]))))
			}
			break // u makes the rest
		}
		if err != nil {
			return Delegation{}, fmt.Errorf("delegated cgroup: %w", err)
		}
		if uid != u.UID {
			if first >= 0 || i == len(dirs)-1 {
				return Delegation{}, not(dir, fmt.Sprintf("is not delegated to you (owned by uid %d)", uid))
			}
			if on, err := readWords(filepath.Join(dir, "cgroup.subtree_control")); err != nil || !on["memory"] {
				return Delegation{}, not(dir, "hands no memory controller down (cgroup.subtree_control), and is root's to change")
			}
			continue
		}
		if first < 0 {
			first = i
		}
		if why, err := notYours(filepath.Join(dir, "cgroup.subtree_control"), u.UID); why != "" || err != nil {
			return Delegation{}, orNot(err, dir, "is yours, but its cgroup.subtree_control "+why, own)
		}
		pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return Delegation{}, fmt.Errorf("delegated cgroup: %w", err)
		}
		switch {
		case len(pids) == 0:
		case dir == self && len(pids) == 1 && pids[0] == u.PID:
			settle = true
		default:
			return Delegation{}, not(dir, "holds other processes than underhood, and cgroup v2 hands controllers down only from a cgroup without any")
		}
	}
	ctl, err := readWords(filepath.Join(dirs[first], "cgroup.controllers"))
	if err != nil {
		return Delegation{}, fmt.Errorf("delegated cgroup: %w", err)
	}
	if !ctl["memory"] {
		return Delegation{}, not(dirs[first], "has no memory controller delegated to it (cgroup.controllers)")
	}
	parent := dirs[len(dirs)-1]
	if self != "" {
		anc := commonAncestor(self, parent)
		if why, err := notYours(filepath.Join(anc, "cgroup.procs"), u.UID); why != "" || err != nil {
			return Delegation{}, orNot(err, parent, fmt.Sprintf("cannot take your processes: moving them there from %s needs write access to %s/cgroup.procs, their common ancestor's, which %s", self, anc, why), own)
		}
	}
	return Delegation{Host: h, Parent: strings.Join(comps, "/"), Settle: settle, Pids: ctl["pids"], CPU: ctl["cpu"]}, nil
}

// notYours says why path is not uid's ("" when it is).
func notYours(path string, uid int) (string, error) {
	owner, err := ownerOf(path)
	if err != nil {
		return "", fmt.Errorf("delegated cgroup: %w", err)
	}
	if owner != uid {
		return fmt.Sprintf("is not delegated to you (owned by uid %d)", owner), nil
	}
	return "", nil
}

func orNot(err error, name, why string, own bool) error {
	if err != nil {
		return err
	}
	return &NotDelegatedError{Cgroup: name, Why: why, Own: own}
}

func must(uid int, _ error) int { return uid }

// chain is root and each parent below it, down to the last.
func chain(root string, comps []string) []string {
	dirs := []string{root}
	for _, c := range comps {
		dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], c))
	}
	return dirs
}

// deepest is the deepest directory of chain(root, comps) that exists.
func deepest(root string, comps []string) string {
	dir := root
	for _, d := range chain(root, comps)[1:] {
		if _, err := os.Stat(d); err != nil {
			break
		}
		dir = d
	}
	return dir
}

func commonAncestor(a, b string) string {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	if n <= 1 {
		return "/"
	}
	return strings.Join(as[:n], "/")
}

// LeafOf is the leaf where underhood itself waits, while the run whose
// cgroup is path runs, when it had to leave its own cgroup (see Settle):
// beside the run's, its name after an underscore, which begins no run's.
func LeafOf(path string) string {
	return filepath.Join(filepath.Dir(path), "_"+filepath.Base(path))
}

// Settled is underhood moved out of the delegated cgroup v2 that held it.
type Settled struct {
	ops      sysOps
	pid      int
	from     string                     // the cgroup underhood was in
	leaf     string                     // where it is now
	clear    []string                   // from and the parents below it, down to the run's
	was      map[string]map[string]bool // their controllers on before
	made     []string                   // the directories Settle made, outermost first
	madeLeaf bool
}

// Leaf is where underhood waits now.
func (s *Settled) Leaf() string { return s.leaf }

// Settle is for a run whose cgroup New(h, parent, name) goes below the
// cgroup that holds underhood itself, delegated to it, as under 'systemd-run
// --user --scope -p Delegate=yes': a cgroup v2 with a process in it hands
// no controllers down. As systemd's delegation guide says and container
// managers do, underhood moves itself out first, into a leaf beside the
// run's cgroup (LeafOf), making the parents on the way; Return moves it
// back. It refuses when underhood is not alone in its cgroup: it moves no
// other process.
func Settle(h Host, parent, name string, u User) (*Settled, error) {
	return settle(h, parent, name, u, realOps)
}

func settle(h Host, parent, name string, u User, ops sysOps) (*Settled, error) {
	comps, err := parentComponents(parent)
	if err != nil {
		return nil, fmt.Errorf("cgroup parent %q: %w", parent, err)
	}
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("cgroup name %q: %w", name, err)
	}
	dirs := chain(h.MemoryRoot, comps)
	from := filepath.Join(h.Mount(), u.Cgroup)
	at := slices.Index(dirs, from)
	if u.Cgroup == "" || at < 0 {
		return nil, fmt.Errorf("settle: underhood's cgroup %s is not on the way to %s", from, dirs[len(dirs)-1])
	}
	pids, err := readPids(filepath.Join(from, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	if len(pids) != 1 || pids[0] != u.PID {
		return nil, fmt.Errorf("settle: %s holds other processes than underhood (pid %d): %v", from, u.PID, pids)
	}
	s := &Settled{ops: ops, pid: u.PID, from: from, clear: dirs[at:], was: map[string]map[string]bool{}}
	for i, d := range s.clear {
		if i > 0 {
			err := ops.mkdir(d, 0o755)
			if err == nil {
				s.made = append(s.made, d)
			} else if !errors.Is(err, fs.ErrExist) {
				return nil, s.remove(fmt.Errorf("settle: create parent cgroup: %w", err))
			}
		}
		if s.was[d], err = readWords(filepath.Join(d, "cgroup.subtree_control")); err != nil {
			return nil, s.remove(fmt.Errorf("settle: %w", err))
		}
	}
	s.leaf = LeafOf(filepath.Join(dirs[len(dirs)-1], name))
	if err := ops.mkdir(s.leaf, 0o755); err != nil {
		return nil, s.remove(fmt.Errorf("settle: create underhood's own cgroup: %w", err))
	}
	s.madeLeaf = true
	if err := ops.write(filepath.Join(s.leaf, "cgroup.procs"), strconv.Itoa(u.PID)); err != nil {
		return nil, s.remove(fmt.Errorf("settle: move underhood (pid %d) into %s: %w", u.PID, s.leaf, err))
	}
	return s, nil
}

// Return moves underhood back into the cgroup it came from, once the run's
// cgroup is gone, and removes what Settle made. cgroup v2 takes a process
// back only into a cgroup that hands no domain controller down: those the
// run turned on are turned off again, deepest first (a cgroup that held a
// process had none on; only pids or cpu, which may be, are left as found).
func (s *Settled) Return() error {
	for i := len(s.clear) - 1; i >= 0; i-- {
		sub := filepath.Join(s.clear[i], "cgroup.subtree_control")
		on, err := readWords(sub)
		if err != nil {
			return fmt.Errorf("return underhood to %s: %w", s.from, err)
		}
		var off []string
		for _, c := range wantControllers {
			if on[c] && !s.was[s.clear[i]][c] {
				off = append(off, "-"+c)
			}
		}
		if len(off) == 0 {
			continue
		}
		if err := s.ops.write(sub, strings.Join(off, " ")); err != nil {
			return fmt.Errorf("return underhood to %s: turn off %s: %w", s.from, strings.Join(off, " "), err)
		}
	}
	if err := s.ops.write(filepath.Join(s.from, "cgroup.procs"), strconv.Itoa(s.pid)); err != nil {
		return fmt.Errorf("return underhood (pid %d) to %s: %w", s.pid, s.from, err)
	}
	return s.remove(nil)
}

// remove removes the leaf and the parents Settle made, deepest first; a
// parent that something else uses by now is left.
func (s *Settled) remove(err error) error {
	if s.madeLeaf {
		if rerr := s.ops.rmdir(s.leaf); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return errors.Join(err, fmt.Errorf("remove underhood's own cgroup: %w", rerr))
		}
	}
	for i := len(s.made) - 1; i >= 0; i-- {
		if rerr := s.ops.rmdir(s.made[i]); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			if !errors.Is(rerr, syscall.EBUSY) && !errors.Is(rerr, syscall.ENOTEMPTY) {
				err = errors.Join(err, fmt.Errorf("remove parent cgroup: %w", rerr))
			}
			break
		}
	}
	return err
}

// OpenBase is h below base, a cgroup a run's journal names as the one
// delegated to its owner, uid: cleanup follows it only if it is a plain
// path in h's v2 memory hierarchy, with no symbolic link on the way, and,
// while it exists, owned by uid, who is not root. A journal is a file on
// disk: it must not lead cleanup into another user's cgroups.
func OpenBase(h Host, base string, uid int) (Host, error) {
	refuse := func(why string) (Host, error) {
		return h, fmt.Errorf("cgroup base %q: %s; underhood follows only a cgroup v2 delegated to the run's owner", base, why)
	}
	if h.MemoryVersion != 2 {
		return refuse("not on a cgroup v2 memory hierarchy")
	}
	if uid == 0 {
		return refuse("the run is root's, and root's runs have none")
	}
	if !filepath.IsAbs(base) || filepath.Clean(base) != base {
		return refuse("not a clean absolute path")
	}
	rel, err := filepath.Rel(h.Mount(), base)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return refuse("not below " + h.Mount())
	}
	cur := h.Mount()
	for _, c := range strings.Split(rel, "/") {
		if err := checkName(c); err != nil {
			return refuse(err.Error())
		}
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return h.Below(base), nil // gone, and all below it: nothing to follow it to
		}
		if err != nil {
			return h, fmt.Errorf("cgroup base: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			return refuse(cur + " is not a directory")
		}
	}
	owner, err := ownerOf(base)
	if err != nil {
		return h, fmt.Errorf("cgroup base: %w", err)
	}
	if owner != uid {
		return refuse(fmt.Sprintf("owned by uid %d, not by the run's owner (uid %d)", owner, uid))
	}
	return h.Below(base), nil
}
