package container

import (
	"errors"
	"fmt"
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
	Name      string
	Live      int // the run is live, held by this underhood PID: left alone
	Killed    []int
	Unmounted []string
	Cgroups   []string
	Veths     []string // host ends of veth pairs removed
	Removed   string   // the run directory, once deleted
	Kept      string   // the run directory, kept on request
}

// Empty reports whether there was nothing to do.
func (r Report) Empty() bool {
	return r.Live == 0 && len(r.Killed) == 0 && len(r.Unmounted) == 0 && len(r.Cgroups) == 0 && r.Removed == ""
}

// MountinfoPath is where cleanup looks for mounts left below a run; a
// variable so tests can point it at a fixture.
var MountinfoPath = "/proc/self/mountinfo"

// Cleanup undoes the run called name from its journal: it ends the payload
// if it still runs, unmounts what is mounted below the run, removes its
// cgroups and deletes its directory. A run that is not there is not an
// error: cleanup is idempotent. A live run (its underhood holds the
// journal's lock) is left alone and reported as such: its own underhood
// cleans up after it.
func Cleanup(w state.Workdir, host cgroup.Host, name string) (Report, error) {
	return replay(w, host, name, false, false)
}

// CleanupAll cleans every run in the work directory.
func CleanupAll(w state.Workdir, host cgroup.Host) ([]Report, error) {
	names, err := w.ListRuns()
	if err != nil {
		return nil, err
	}
	var out []Report
	var errs []error
	for _, n := range names {
		r, err := replay(w, host, n, false, false)
		if err != nil {
			errs = append(errs, err)
		}
		if !r.Empty() {
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

// undo is the end of every Run: the same replay as cleanup.
func undo(w state.Workdir, host cgroup.Host, name string, keep bool) error {
	_, err := replay(w, host, name, keep, true)
	return err
}

// replay undoes a run from its journal. owner says the caller is the run's
// own underhood (which holds the lock); anyone else must take the lock
// first, and leaves a live run alone.
func replay(w state.Workdir, host cgroup.Host, name string, keepDir, owner bool) (Report, error) {
	rep := Report{Name: name}
	if err := state.ValidName(name); err != nil {
		return rep, err
	}
	dir := w.Run(name)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err := ownPath(w, dir); err != nil {
		return rep, err
	}
	if !owner {
		lock, err := state.Lock(dir)
		if errors.Is(err, state.ErrRunLive) {
			es, _ := state.ReadJournal(dir)
			rep.Live = state.Summarize(name, dir, es).Owner.PID
			if rep.Live == 0 {
				rep.Live = -1
			}
			return rep, nil
		}
		if err != nil {
			return rep, fmt.Errorf("cleanup %s: %w", name, err)
		}
		if lock != nil {
			defer lock.Close()
		}
	}
	es, err := state.ReadJournal(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("cleanup %s: %w", name, err)
	}
	info := state.Summarize(name, dir, es)
	var errs []error

	// 1. Processes: only the one we started, recognised by PID and start
	// time, so a reused PID is never hit.
	if p := info.Payload; p.PID > 0 && proc.Host.Same(p.PID, p.Start) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
		if waitGone(p.PID, p.Start, 5*time.Second) {
			rep.Killed = append(rep.Killed, p.PID)
		} else {
			errs = append(errs, fmt.Errorf("cleanup %s: process %d survived SIGKILL", name, p.PID))
		}
	}
	// What the payload started and left behind (a background job, where
	// there was no PID namespace to end it): the members of its process
	// group whose root is in the lab.
	if p := info.Payload; p.PGID > 0 && !owner {
		for _, pid := range proc.Host.Group(p.PGID, w.Root) {
			st, err := proc.Host.StartTime(pid)
			if err != nil {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if waitGone(pid, st, 5*time.Second) {
				rep.Killed = append(rep.Killed, pid)
			}
		}
	}

	// 2. Mounts: those the journal names and any the host sees below the run.
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
			errs = append(errs, fmt.Errorf("cleanup %s: %s is still mounted; run 'underhood cleanup %s' again, or 'umount -l %s'", name, left[0].Mountpoint, name, left[0].Mountpoint))
		}
	}

	// A veth's host end that outlived its run: the pair goes with the
	// container's namespace, so this is rare; only a veth of that name is
	// removed, in cleanup's own namespace, where 'run --net veth' made it.
	if !owner && len(info.Veths) > 0 {
		links, _ := netns.Links(nil)
		for _, v := range info.Veths {
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

	// 3. cgroups.
	for i := len(info.Cgroups) - 1; i >= 0; i-- {
		p := info.Cgroups[i]
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			removeEmptyParents(host, p)
			continue
		}
		m, err := cgroup.Open(host, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", name, err))
			continue
		}
		if err := m.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", name, err))
			continue
		}
		rep.Cgroups = append(rep.Cgroups, p)
		removeEmptyParents(host, p)
	}

	// 4. The run directory, unless something above failed (a mount left
	// below it must not be walked into) or it is to be kept.
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	if keepDir {
		rep.Kept = dir
		return rep, nil
	}
	if err := removeTree(dir); err != nil {
		return rep, fmt.Errorf("cleanup %s: %w", name, err)
	}
	rep.Removed = dir
	return rep, nil
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
// a cgroup that still has children, so another run's parent is safe.
func removeEmptyParents(host cgroup.Host, path string) {
	top := filepath.Join(host.MemoryRoot, cgroup.DefaultParent)
	if host.MemoryRoot == "" || !strings.HasPrefix(path, top+"/") {
		return
	}
	for p := filepath.Dir(path); p != top && strings.HasPrefix(p, top+"/"); p = filepath.Dir(p) {
		if err := syscall.Rmdir(p); err != nil {
			return
		}
	}
}
