package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// JournalFile is the name of a run's journal inside its directory.
const JournalFile = "journal"

// Entry is one line of a run's journal. Every resource is recorded before
// it is created, so that cleanup can undo a run that was cut short.
type Entry struct {
	Op string `json:"op"` // run, dir, cgroup, owner, pid, mount, veth, exit

	// op=run: what the run is
	Name    string    `json:"name,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	Memory  int64     `json:"memory,omitempty"`
	Created time.Time `json:"created,omitzero"`

	Path  string `json:"path,omitempty"`  // dir, cgroup, mount
	PID   int    `json:"pid,omitempty"`   // owner (underhood), pid (payload, also its process group)
	Start uint64 `json:"start,omitempty"` // the PID's start time, see proc.StartTime
	PGID  int    `json:"pgid,omitempty"`  // pid: the payload's process group
	Code  *int   `json:"code,omitempty"`  // exit
}

// ErrRunExists means a run of that name is already on disk.
var ErrRunExists = errors.New("run exists")

// ValidName checks a run name: it becomes a directory, a cgroup and a
// hostname, so it must be one short path component.
func ValidName(name string) error {
	if !validName(name) {
		return fmt.Errorf("name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// validName is ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$, by hand: this package is
// loaded by every container start, and a regexp costs its init time.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// Journal is an open run journal.
type Journal struct {
	Dir string
	f   *os.File
	enc *json.Encoder
}

// CreateRun makes the run's directory and opens its journal. It fails with
// ErrRunExists when the name is taken: two runs never share a directory.
func (w Workdir) CreateRun(name string) (*Journal, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(w.Runs(), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", w.Runs(), err)
	}
	dir := w.Run(name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("run %s exists at %s: pick another --name, or remove it with 'underhood cleanup %s': %w", name, dir, name, ErrRunExists)
		}
		return nil, fmt.Errorf("create run directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("create journal in %s: %w", dir, err)
	}
	// The run holds an exclusive lock on its journal for as long as its
	// underhood lives (the kernel drops it even on kill -9): cleanup skips
	// a run whose lock it cannot take, so it never undoes a live run.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("lock journal in %s: %w", dir, err)
	}
	j := &Journal{Dir: dir, f: f, enc: json.NewEncoder(f)}
	if err := j.Record(Entry{Op: "dir", Path: dir}); err != nil {
		j.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return j, nil
}

// Record appends an entry. It is one write(2) with O_APPEND, so a reader
// never sees half a line.
func (j *Journal) Record(e Entry) error {
	if err := j.enc.Encode(e); err != nil {
		return fmt.Errorf("write journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

// ErrRunLive means the run's underhood still holds its journal.
var ErrRunLive = errors.New("run is live")

// Lock takes the journal lock of the run in dir for a cleanup, or fails
// with ErrRunLive while its underhood runs. A run without a journal (cut
// short before it had one) is locked with nothing to hold. The caller
// closes the returned file when done.
func Lock(dir string) (*os.File, error) {
	f, err := os.Open(filepath.Join(dir, JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open journal in %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrRunLive
		}
		return nil, fmt.Errorf("lock journal in %s: %w", dir, err)
	}
	return f, nil
}

// Live reports whether the run in dir is held by a living underhood.
func Live(dir string) bool {
	f, err := Lock(dir)
	if f != nil {
		f.Close()
	}
	return errors.Is(err, ErrRunLive)
}

// ReadJournal reads the entries of the run in dir. A torn last line (a
// crash mid-write) is ignored.
func ReadJournal(dir string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(dir, JournalFile))
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// RunInfo is what a journal says about a run.
type RunInfo struct {
	Name    string
	Dir     string
	Kind    string
	Memory  int64
	Created time.Time
	Owner   Entry // underhood's own process
	Payload Entry // the container's first process
	Cgroups []string
	Mounts  []string
	Veths   []string // the host's ends of veth pairs
	Dirs    []string
	Exit    *int
	Entries []Entry
}

// Summarize folds a journal into a RunInfo.
func Summarize(name, dir string, es []Entry) RunInfo {
	r := RunInfo{Name: name, Dir: dir, Entries: es}
	for _, e := range es {
		switch e.Op {
		case "run":
			r.Kind, r.Memory, r.Created = e.Kind, e.Memory, e.Created
		case "owner":
			r.Owner = e
		case "pid":
			r.Payload = e
		case "cgroup":
			r.Cgroups = append(r.Cgroups, e.Path)
		case "cgroup-not-ours":
			// Its mkdir failed: someone else's, never to be touched.
			for i, c := range r.Cgroups {
				if c == e.Path {
					r.Cgroups = append(r.Cgroups[:i], r.Cgroups[i+1:]...)
					break
				}
			}
		case "mount":
			r.Mounts = append(r.Mounts, e.Path)
		case "veth":
			r.Veths = append(r.Veths, e.Name)
		case "dir":
			r.Dirs = append(r.Dirs, e.Path)
		case "exit":
			r.Exit = e.Code
		}
	}
	return r
}

// ListRuns returns the names of the run directories, sorted.
func (w Workdir) ListRuns() ([]string, error) {
	ents, err := os.ReadDir(w.Runs())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list runs in %s: %w", w.Runs(), err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && ValidName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
