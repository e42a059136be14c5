package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// JournalFile is the name of a run's journal inside its directory.
const JournalFile = "journal"

// Entry is one line of a run's journal. Every resource is recorded before
// it is created, so that cleanup can undo a run that was cut short.
type Entry struct {
	Op string `json:"op"` // run, dir, cgroup, leaf, owner, pid, mount, veth, exit

	// op=run: what the run is
	Name    string    `json:"name,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	Memory  int64     `json:"memory,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Parent  string    `json:"parent,omitempty"` // the cgroup parent, as given
	// Base is the cgroup v2 delegated to a user who is not root that the
	// parent is below (see cgroup.Host.Base); "" for the hierarchy's root.
	Base string `json:"base,omitempty"`

	Path  string `json:"path,omitempty"`  // dir, cgroup, mount; leaf: underhood's own cgroup (cgroup.Settle)
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

// Journal is an open run journal. It keeps what it recorded in memory:
// the run's own underhood undoes the run from that, not from the file on
// disk, which anyone may have changed since.
type Journal struct {
	Dir     string
	f       *os.File
	enc     *json.Encoder
	entries []Entry
}

// tempSuffix ends the temporary name a run's directory has until it is
// complete and locked: .NAME.PID.new, which is no valid run name.
const tempSuffix = ".new"

// CreateRun makes the run's directory and opens its journal, locked. The
// directory is made under a temporary name, its journal created and
// locked and its first entry written, and only then renamed to the run's
// name: from the first moment it is visible under that name, it is
// locked, so a cleanup never sees it half made. It fails with
// ErrRunExists when the name is taken: two runs never share a directory.
func (w Workdir) CreateRun(name string) (*Journal, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(w.Runs(), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", w.Runs(), err)
	}
	dir := w.Run(name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, runExists(name, dir)
	}
	tmp := filepath.Join(w.Runs(), "."+name+"."+strconv.Itoa(os.Getpid())+tempSuffix)
	j, err := createLocked(tmp, dir)
	if err != nil {
		return nil, err
	}
	if err := renameNoReplace(tmp, dir); err != nil {
		j.f.Close()
		os.Remove(filepath.Join(tmp, JournalFile))
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return nil, runExists(name, dir)
		}
		return nil, fmt.Errorf("create run directory %s: %w", dir, err)
	}
	return j, nil
}

func runExists(name, dir string) error {
	return fmt.Errorf("run %s exists at %s: pick another --name, or remove it with 'underhood cleanup %s': %w", name, dir, name, ErrRunExists)
}

// createLocked makes the directory tmp with a journal, locked, whose first
// entry names dir, the run's directory once renamed.
func createLocked(tmp, dir string) (*Journal, error) {
	if err := os.Mkdir(tmp, 0o755); errors.Is(err, fs.ErrExist) {
		// Left by an earlier process with this PID, killed mid-way.
		os.Remove(filepath.Join(tmp, JournalFile))
		os.Remove(tmp)
		err = os.Mkdir(tmp, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create run directory %s: %w", tmp, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("create run directory %s: %w", tmp, err)
	}
	f, err := os.OpenFile(filepath.Join(tmp, JournalFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("create journal in %s: %w", tmp, err)
	}
	// The run holds an exclusive lock on its journal for as long as its
	// underhood lives (the kernel drops it even on kill -9): cleanup skips
	// a run whose lock it cannot take, so it never undoes a live run.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		os.Remove(f.Name())
		os.Remove(tmp)
		return nil, fmt.Errorf("lock journal in %s: %w", tmp, err)
	}
	j := &Journal{Dir: dir, f: f, enc: json.NewEncoder(f)}
	if err := j.Record(Entry{Op: "dir", Path: dir}); err != nil {
		f.Close()
		os.Remove(f.Name())
		os.Remove(tmp)
		return nil, err
	}
	return j, nil
}

// renameNoReplace renames old to new, failing with EEXIST if new exists,
// whatever it is (rename(2) would replace an empty directory). A
// filesystem without RENAME_NOREPLACE gets a check, then rename.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, lerr := os.Lstat(new); lerr == nil {
			return fs.ErrExist
		}
		err = os.Rename(old, new)
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fs.ErrExist
	}
	return err
}

// Record appends an entry. It is one write(2) with O_APPEND, so a reader
// never sees half a line.
func (j *Journal) Record(e Entry) error {
	if err := j.enc.Encode(e); err != nil {
		return fmt.Errorf("write journal %s: %w", filepath.Join(j.Dir, JournalFile), err)
	}
	j.entries = append(j.entries, e)
	return nil
}

// Entries are what this journal recorded, as kept in memory.
func (j *Journal) Entries() []Entry { return slices.Clone(j.entries) }

// Close closes the journal file, which releases the run's lock.
func (j *Journal) Close() error { return j.f.Close() }

// ErrRunLive means the run's underhood still holds its journal.
var ErrRunLive = errors.New("run is live")

// ErrNoJournal means a run directory has no journal: underhood did not
// make it (every run of underhood's has one from its first moment).
var ErrNoJournal = errors.New("no journal")

// BadJournalError is a journal that underhood cannot have written: not a
// regular file (a FIFO, a directory, a symlink), or too large.
type BadJournalError struct {
	Path string
	Why  string
}

func (e *BadJournalError) Error() string { return fmt.Sprintf("journal %s %s", e.Path, e.Why) }

// Limits on what is read of a journal: underhood's own lines are a few
// hundred bytes and a run writes a handful of them.
const (
	maxLine    = 64 << 10
	maxJournal = 4 << 20
)

// openJournal opens the journal in dir for reading without ever blocking
// or following a link: it must be a regular file (a FIFO planted there
// would block an open(2), and a read, forever).
func openJournal(dir string) (*os.File, error) {
	p := filepath.Join(dir, JournalFile)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNoJournal)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &BadJournalError{Path: p, Why: "is " + kindOf(fi.Mode()) + ", not a file underhood wrote"}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNoJournal) // removed since the look
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, &BadJournalError{Path: p, Why: "is not a regular file"}
	}
	return f, nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// Lock takes the journal lock of the run in dir for a cleanup, or fails
// with ErrRunLive while its underhood runs (ErrNoJournal: there is none).
// The caller reads the journal from the returned file, and closes it when
// done.
func Lock(dir string) (*os.File, error) {
	f, err := openJournal(dir)
	if err != nil {
		return nil, err
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
// crash mid-write) is ignored, and so are lines longer than any underhood
// writes.
func ReadJournal(dir string) ([]Entry, error) {
	f, err := openJournal(dir)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	es, _, err := ReadEntries(f)
	return es, err
}

// ReadEntries reads a journal from its start. skipped counts the lines
// over 64 KiB that were left out: underhood writes none.
func ReadEntries(f *os.File) (es []Entry, skipped int, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("read journal %s: %w", f.Name(), err)
	}
	br := bufio.NewReaderSize(f, maxLine)
	var total int
	long := false
	for {
		line, err := br.ReadSlice('\n')
		if total += len(line); total > maxJournal {
			return es, skipped, &BadJournalError{Path: f.Name(), Why: fmt.Sprintf("is over %d MiB, far more than underhood writes", maxJournal>>20)}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if long {
			skipped, long = skipped+1, false
		} else if len(bytes.TrimSpace(line)) > 0 {
			var e Entry
			if json.Unmarshal(line, &e) == nil {
				es = append(es, e)
			}
		}
		if errors.Is(err, io.EOF) {
			return es, skipped, nil
		}
		if err != nil {
			return es, skipped, fmt.Errorf("read journal %s: %w", f.Name(), err)
		}
	}
}

// RunInfo is what a journal says about a run.
type RunInfo struct {
	Name    string
	Dir     string
	Kind    string
	Memory  int64
	Parent  string
	Base    string // the delegated cgroup the parent is below, if any
	Created time.Time
	Owner   Entry // underhood's own process
	Payload Entry // the container's first process
	Cgroups []string
	Leaf    string // underhood's own cgroup beside the run's, if it had one
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
			r.Kind, r.Memory, r.Parent, r.Base, r.Created = e.Kind, e.Memory, e.Parent, e.Base, e.Created
		case "owner":
			r.Owner = e
		case "pid":
			r.Payload = e
		case "cgroup":
			r.Cgroups = append(r.Cgroups, e.Path)
		case "leaf":
			r.Leaf = e.Path
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

// Ours reports whether the journal is one underhood wrote for the run in
// dir: its first entry names that directory.
func (r RunInfo) Ours() bool {
	return len(r.Entries) > 0 && r.Entries[0].Op == "dir" && r.Entries[0].Path == r.Dir
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

// SweepTemps removes the temporary directories (.NAME.PID.new) of runs
// whose underhood died while making them, before they had their name: such
// a directory holds only its journal. It returns the directories removed.
func (w Workdir) SweepTemps() ([]string, error) {
	ents, err := os.ReadDir(w.Runs())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list runs in %s: %w", w.Runs(), err)
	}
	var out []string
	for _, e := range ents {
		pid, ok := tempPID(e.Name())
		if !ok || !e.IsDir() || unix.Kill(pid, 0) != unix.ESRCH {
			continue // not a temporary name, or its maker still lives
		}
		dir := filepath.Join(w.Runs(), e.Name())
		if sub, err := os.ReadDir(dir); err != nil || len(sub) > 1 ||
			len(sub) == 1 && (sub[0].Name() != JournalFile || !sub[0].Type().IsRegular()) {
			continue // more than underhood puts there: not ours to remove
		}
		if f, err := Lock(dir); err == nil {
			os.Remove(f.Name())
			f.Close()
		} else if !errors.Is(err, ErrNoJournal) {
			continue
		}
		if err := os.Remove(dir); err == nil {
			out = append(out, dir)
		}
	}
	return out, nil
}

// tempPID parses .NAME.PID.new.
func tempPID(n string) (int, bool) {
	if !strings.HasPrefix(n, ".") || !strings.HasSuffix(n, tempSuffix) {
		return 0, false
	}
	n = strings.TrimSuffix(n[1:], tempSuffix)
	i := strings.LastIndexByte(n, '.')
	if i < 0 || ValidName(n[:i]) != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(n[i+1:])
	return pid, err == nil && pid > 0
}
