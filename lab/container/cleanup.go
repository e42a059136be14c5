package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/mount"
	"github.com/underhood/underhood/lab/netns"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/state"
)

// Report says what a cleanup did for one run.
type Report struct {
	Name string
	Live int // the run is live, held by this underhood PID: left alone
	// Foreign says why the directory is not a run of underhood's (no
	// journal, or one underhood cannot have written): nothing in it was
	// touched.
	Foreign string
	Skipped int // journal lines over 64 KiB, which underhood never writes: ignored
	Killed  []int
	// Spared are what the journal named that is not the run's (a process
	// or a cgroup of someone else's): left alone.
	Spared    []string
	Unmounted []string
	Cgroups   []string
	Cleared   []string // files made immutable inside the run: flag cleared
	Veths     []string // host ends of veth pairs removed
	Removed   string   // the run directory, once deleted
	Kept      string   // the run directory, kept on request
}

// Empty reports whether there was nothing to do.
func (r Report) Empty() bool {
	return r.Live == 0 && r.Foreign == "" && len(r.Spared) == 0 && len(r.Killed) == 0 && len(r.Unmounted) == 0 && len(r.Cgroups) == 0 && r.Removed == ""
}

// MountinfoPath is where cleanup looks for mounts left below a run; a
// variable so tests can point it at a fixture.
var MountinfoPath = "/proc/self/mountinfo"

// Cleanup undoes the run called name from its journal: it ends the payload
// if it still runs, unmounts what is mounted below the run, removes its
// cgroups and deletes its directory. A run that is not there is not an
// error: cleanup is idempotent. A live run (its underhood holds the
// journal's lock) is left alone and reported as such: its own underhood
// cleans up after it. So is a directory that is not underhood's (Foreign).
func Cleanup(w state.Workdir, host cgroup.Host, name string) (Report, error) {
	if err := state.ValidName(name); err != nil {
		return Report{Name: name}, err
	}
	if err := owned(w); err != nil {
		return Report{Name: name}, ignoreMissing(err)
	}
	return cleanupRun(w, host, name)
}

// CleanupAll cleans every run in the work directory, and removes what
// runs cut short while being made left.
func CleanupAll(w state.Workdir, host cgroup.Host) ([]Report, error) {
	if err := owned(w); err != nil {
		return nil, ignoreMissing(err)
	}
	names, err := w.ListRuns()
	if err != nil {
		return nil, err
	}
	var out []Report
	temps, err := w.SweepTemps()
	errs := []error{err}
	for _, d := range temps {
		out = append(out, Report{Name: filepath.Base(d), Removed: d})
	}
	for _, n := range names {
		r, err := cleanupRun(w, host, n)
		errs = append(errs, err)
		if !r.Empty() {
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

// owned refuses a work directory that is not underhood's: nothing in it
// may be deleted.
func owned(w state.Workdir) error {
	if err := w.Owned(); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no work directory: nothing to clean
	}
	return err
}

// cleanupRun undoes a run that its underhood left: under the run's lock,
// and only what the run's own journal recorded.
func cleanupRun(w state.Workdir, host cgroup.Host, name string) (Report, error) {
	rep := Report{Name: name}
	dir := w.Run(name)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err := ownPath(w, dir); err != nil {
		return rep, err
	}
	lock, err := state.Lock(dir)
	if err != nil && gone(dir, errors.Is(err, state.ErrNoJournal)) {
		// A run that ended between the look above and the lock took its
		// directory, journal and all, with it: nothing left to clean.
		return rep, nil
	}
	var bad *state.BadJournalError
	switch {
	case errors.Is(err, state.ErrRunLive):
		rep.Live = livePID(name, dir)
		return rep, nil
	case errors.Is(err, state.ErrNoJournal):
		rep.Foreign = "it has no journal"
		return rep, nil
	case errors.As(err, &bad):
		rep.Foreign = "its journal " + bad.Why
		return rep, nil
	case err != nil:
		return rep, fmt.Errorf("cleanup %s: %w", name, err)
	}
	defer lock.Close()
	es, skipped, err := state.ReadEntries(lock)
	if errors.As(err, &bad) {
		rep.Foreign = "its journal " + bad.Why
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("cleanup %s: %w", name, err)
	}
	info := state.Summarize(name, dir, es)
	if !info.Ours() {
		rep.Foreign = "its journal does not begin with this directory, as underhood's do"
		return rep, nil
	}
	rep.Skipped = skipped
	return rep, undoRun(w, host, info, &rep, false, false, nil)
}

// gone reports whether dir no longer exists. Without its journal (wait)
// it may be the last moment of a run removing its own directory, journal
// last (see removeTree): such a directory is empty and goes within
// microseconds, so gone waits up to a tenth of a second for it.
func gone(dir string, wait bool) bool {
	for i := 0; ; i++ {
		if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
			return true
		}
		if !wait || i == 20 {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// livePID is the PID of the underhood that holds a live run, -1 if the
// journal does not say.
func livePID(name, dir string) int {
	es, _ := state.ReadJournal(dir)
	if pid := state.Summarize(name, dir, es).Owner.PID; pid > 0 {
		return pid
	}
	return -1
}

// undo is the end of every Run: the same steps as a cleanup, from what
// the run holds in memory; back, if not nil, runs once the cgroups are
// gone, before the directory.
func undo(w state.Workdir, host cgroup.Host, j *state.Journal, keep bool, back func() error) error {
	info := state.Summarize(filepath.Base(j.Dir), j.Dir, j.Entries())
	if err := ownPath(w, j.Dir); err != nil {
		return err
	}
	var rep Report
	return undoRun(w, host, info, &rep, keep, true, back)
}

// undoRun undoes a run in the order it was made, backwards: processes,
// mounts, cgroups, then the directory. owner says the caller is the run's
// own underhood.
func undoRun(w state.Workdir, host cgroup.Host, info state.RunInfo, rep *Report, keepDir, owner bool, back func() error) error {
	host = runHost(host, info, rep)
	errs := kill(w, host, info, rep, owner)
	errs = append(errs, unmount(info, rep)...)
	errs = append(errs, removeVeths(info, rep, owner)...)
	errs = append(errs, removeCgroups(host, info, rep, owner)...)
	if back != nil && len(errs) == 0 {
		if err := back(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", info.Name, err))
		}
	}
	// The run directory stays if something above failed (a mount left
	// below it must not be walked into).
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return removeDir(info, rep, keepDir)
}

// runHost is host as the run's cgroups see it: below the cgroup delegated
// to the run's owner that its journal names, if cgroup.OpenBase accepts
// it as the owner's, that is the owner of the run's directory. A base it
// refuses is not followed: the run's cgroup is then none that exists
// there, and each named is left alone.
func runHost(host cgroup.Host, info state.RunInfo, rep *Report) cgroup.Host {
	if info.Base == "" {
		return host
	}
	h, err := cgroup.OpenBase(host, info.Base, runOwner(info))
	if err != nil {
		rep.Spared = append(rep.Spared, err.Error()+": left alone")
		return host
	}
	return h
}

// kill ends the payload, recognised by PID and start time so that a
// reused PID is never hit, and what it left in its process group; only a
// process that is the run's (see belongs), whatever the journal says.
func kill(w state.Workdir, host cgroup.Host, info state.RunInfo, rep *Report, owner bool) []error {
	var errs []error
	if p := info.Payload; p.PID > 0 && proc.Host.Same(p.PID, p.Start) {
		if why := belongs(w, host, info, p.PID); why != "" {
			rep.Spared = append(rep.Spared, fmt.Sprintf("process %d: %s", p.PID, why))
		} else if killWait(p.PID, p.Start) {
			rep.Killed = append(rep.Killed, p.PID)
		} else {
			errs = append(errs, fmt.Errorf("cleanup %s: process %d survived SIGKILL", info.Name, p.PID))
		}
	}
	// What the payload started and left behind (a background job, where
	// there was no PID namespace to end it): the members of its process
	// group whose root is in the lab.
	if p := info.Payload; p.PGID > 0 && !owner {
		for _, pid := range proc.Host.Group(p.PGID, w.Root) {
			st, err := proc.Host.StartTime(pid)
			if err == nil && belongs(w, host, info, pid) == "" && killWait(pid, st) {
				rep.Killed = append(rep.Killed, pid)
			}
		}
	}
	return errs
}

func killWait(pid int, start uint64) bool {
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return waitGone(pid, start, 5*time.Second)
}

// belongs says why the process pid is not the run's, or "" when it is:
// its root or working directory is in the run's directory or the lab's
// shared root, or it is in the run's own cgroup. A journal is a file on
// disk: a PID in it must never be enough to kill a process.
func belongs(w state.Workdir, host cgroup.Host, info state.RunInfo, pid int) string {
	root, _ := os.Readlink(proc.Host.Path(pid, "root"))
	cwd, _ := os.Readlink(proc.Host.Path(pid, "cwd"))
	var dirs []string
	for _, d := range []string{info.Dir, w.Rootfs()} {
		dirs = append(dirs, d)
		if real, err := filepath.EvalSymlinks(d); err == nil && real != d {
			dirs = append(dirs, real) // /proc shows the path without links
		}
	}
	for _, p := range []string{root, cwd} {
		for _, d := range dirs {
			if p != "" && within(d, p) {
				return ""
			}
		}
	}
	if cg := runCgroup(host, info); cg != "" && host.MemoryRoot != "" {
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(cg, host.Mount()), "/")
		b, _ := os.ReadFile(proc.Host.Path(pid, "cgroup"))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[2] == rel {
				return ""
			}
		}
	}
	return fmt.Sprintf("not this run's (root %s, working directory %s, not in its cgroup): left alone", root, cwd)
}

// runOwner is who owns the run's directory: root for sudo's runs, the
// user for a rootless one (-1 if it cannot be read).
func runOwner(info state.RunInfo) int {
	return ownerOf(info.Dir)
}

func ownerOf(path string) int {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return -1
	}
	return int(st.Uid)
}

// runCgroup is the one cgroup path the run's own name and parent give
// ("" if none can be): a journal naming any other is not followed. Below
// underhood/ there are users' cgroups too (delegated to them): the
// cgroup of a user's run must be that user's, or it is none.
func runCgroup(host cgroup.Host, info state.RunInfo) string {
	p := nameCgroup(host, info)
	if uid := runOwner(info); p != "" && uid != 0 {
		if owner := ownerOf(p); owner != -1 && owner != uid {
			return ""
		}
	}
	return p
}

// nameCgroup is the cgroup path the run's name and parent give.
func nameCgroup(host cgroup.Host, info state.RunInfo) string {
	parent := info.Parent
	if parent == "" {
		parent = cgroup.DefaultParent // a journal from before the parent was recorded
		for _, c := range info.Cgroups {
			if rel, err := filepath.Rel(host.MemoryRoot, c); err == nil && filepath.Base(c) == info.Name {
				parent = filepath.Dir(rel)
			}
		}
	}
	m, err := cgroup.New(host, parent, info.Name)
	if err != nil {
		return ""
	}
	return m.Path()
}

// unmount unmounts, deepest first, the mounts the journal names and any
// the host sees below the run.
func unmount(info state.RunInfo, rep *Report) []error {
	dir := info.Dir
	targets := map[string]bool{}
	for _, m := range info.Mounts {
		if within(dir, m) {
			targets[m] = true
		}
	}
	if infos, err := mount.Read(MountinfoPath); err == nil {
		for _, m := range mount.Under(infos, dir) {
			targets[m.Mountpoint] = true
		}
	}
	var errs []error
	for _, t := range deepestFirst(targets) {
		if err := mount.Unmount(t); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Unmounted = append(rep.Unmounted, t)
	}
	if len(rep.Unmounted) > 0 {
		infos, _ := mount.Read(MountinfoPath)
		if left := mount.Under(infos, dir); len(left) > 0 {
			errs = append(errs, fmt.Errorf("cleanup %s: %s is still mounted; run 'underhood cleanup %s' again, or 'umount -l %s'", info.Name, left[0].Mountpoint, info.Name, left[0].Mountpoint))
		}
	}
	return errs
}

// removeVeths removes a veth's host end that outlived its run: the pair
// goes with the container's namespace, so this is rare; only a veth of
// that name is removed, in cleanup's own namespace, where 'run --net veth'
// made it.
func removeVeths(info state.RunInfo, rep *Report, owner bool) []error {
	var errs []error
	name := info.Name
	if !owner && len(info.Veths) > 0 {
		links, _ := netns.Links(nil)
		for _, v := range info.Veths {
			// A journal is trusted for nothing: only a name underhood gives
			// its host ends is removed, never another veth of the host's.
			if !strings.HasPrefix(v, netns.HostPrefix) {
				rep.Spared = append(rep.Spared, fmt.Sprintf("veth %s: not a name underhood gives (%s…): left alone", v, netns.HostPrefix))
				continue
			}
			if !slices.ContainsFunc(links, func(l netns.Link) bool { return l.Name == v && l.Kind == "veth" }) {
				continue
			}
			if err := netns.Delete(nil, v); err != nil {
				errs = append(errs, fmt.Errorf("cleanup %s: %w", name, err))
				continue
			}
			rep.Veths = append(rep.Veths, v)
		}
	}

	return errs
}

// removeCgroups removes the run's cgroups, the last made first, then the
// leaf underhood itself waited in, if it had one: the one beside the run's
// cgroup, whatever the journal says. The run's own underhood is in that
// leaf still (owner): it leaves and removes it itself (cgroup.Settled).
func removeCgroups(host cgroup.Host, info state.RunInfo, rep *Report, owner bool) []error {
	var errs []error
	own := runCgroup(host, info)
	for i := len(info.Cgroups) - 1; i >= 0; i-- {
		p := info.Cgroups[i]
		if filepath.Clean(p) != own {
			rep.Spared = append(rep.Spared, fmt.Sprintf("cgroup %s: not this run's (%s is): left alone", p, or(own, "none")))
			continue
		}
		if err := removeCgroup(host, p, runOwner(info), rep); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", info.Name, err))
		}
	}
	leaf := ""
	if own != "" {
		leaf = cgroup.LeafOf(own)
	}
	if uid := runOwner(info); info.Leaf != "" && uid != 0 && ownerOf(info.Leaf) != -1 && ownerOf(info.Leaf) != uid {
		leaf = "" // not the user's: none of its run's
	}
	switch {
	case info.Leaf == "" || owner:
	case filepath.Clean(info.Leaf) != leaf:
		rep.Spared = append(rep.Spared, fmt.Sprintf("cgroup %s: not this run's (%s is): left alone", info.Leaf, or(leaf, "none")))
	default:
		if err := removeCgroup(host, info.Leaf, runOwner(info), rep); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", info.Name, err))
		}
	}
	return errs
}

// removeCgroup removes one cgroup of the run's, and the levels above it
// that it leaves empty and that uid, the run's owner, could remove.
func removeCgroup(host cgroup.Host, p string, uid int, rep *Report) error {
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		removeEmptyParents(host, p, uid)
		return nil
	}
	m, err := cgroup.Open(host, p)
	if err == nil {
		err = m.Remove()
	}
	if err != nil {
		return err
	}
	rep.Cgroups = append(rep.Cgroups, p)
	removeEmptyParents(host, p, uid)
	return nil
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// removeDir deletes the run directory, unless it is to be kept.
func removeDir(info state.RunInfo, rep *Report, keep bool) error {
	if keep {
		rep.Kept = info.Dir
		return nil
	}
	cleared, err := removeTree(info.Dir)
	rep.Cleared = cleared
	if err != nil {
		return fmt.Errorf("cleanup %s: %w", info.Name, err)
	}
	rep.Removed = info.Dir
	return nil
}

// ownPath refuses anything that is not a real directory of ours: a run
// directory must sit directly in <workdir>/runs, with no symlink on the way.
func ownPath(w state.Workdir, dir string) error {
	for p := dir; p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("cleanup %s: %w", dir, err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("cleanup %s: %s is a symlink; refusing to follow it", dir, p)
		}
		if p == w.Root {
			return nil
		}
	}
	return fmt.Errorf("cleanup %s: not below the work directory %s", dir, w.Root)
}

func within(dir, p string) bool {
	p = filepath.Clean(p)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func deepestFirst(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	for a := 1; a < len(out); a++ {
		for b := a; b > 0 && len(out[b]) > len(out[b-1]); b-- {
			out[b], out[b-1] = out[b-1], out[b]
		}
	}
	return out
}

func waitGone(pid int, start uint64, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for d := time.Millisecond; ; d *= 2 {
		if !proc.Host.Same(pid, start) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if d > 100*time.Millisecond {
			d = 100 * time.Millisecond
		}
		time.Sleep(d)
	}
}

// removeEmptyParents removes the levels that a nested --cgroup-parent
// (underhood/workshop/…) added above a run's cgroup, as long as they are
// empty; the top parent named underhood stays. The kernel refuses to remove
// a cgroup that still has children, so another run's parent is safe. For a
// user's run (uid not root), only what the user could remove itself goes:
// not the cgroup root delegated to it, in a parent of root's.
func removeEmptyParents(host cgroup.Host, path string, uid int) {
	top := filepath.Join(host.MemoryRoot, cgroup.DefaultParent)
	if host.MemoryRoot == "" || !strings.HasPrefix(path, top+"/") {
		return
	}
	for p := filepath.Dir(path); p != top && strings.HasPrefix(p, top+"/"); p = filepath.Dir(p) {
		if uid != 0 && ownerOf(filepath.Dir(p)) != uid {
			return
		}
		if err := syscall.Rmdir(p); err != nil {
			return
		}
	}
}
