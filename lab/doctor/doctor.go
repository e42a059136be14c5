// Package doctor checks whether a machine can run the workshop: where it
// runs (WSL, a container, which VM), the architecture, root, the kernel,
// namespaces, the cgroup layout and memory controller, swap, mount
// propagation, BusyBox and user-namespace restrictions. Every path it reads
// is an option, so tests run it on fixture trees.
package doctor

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
)

// Info is a finding that needs no action.
const Info ui.Level = "INFO"

// Options say where to look. The zero values of ProcRoot, CgroupRoot,
// SysRoot and FileRoot mean /proc, /sys/fs/cgroup, /sys and /; those of
// Machine, GOARCH and LookPath mean this machine's uname -m, this build's
// architecture and exec.LookPath.
type Options struct {
	ProcRoot   string
	CgroupRoot string
	SysRoot    string
	// FileRoot is where /.dockerenv, /etc/wsl.conf and the like are read.
	FileRoot string
	Machine  string // the kernel's machine, uname -m
	GOARCH   string // the architecture underhood is built for
	LookPath func(file string) (string, error)
	Workdir  state.Workdir
	// Probe really creates and removes a cgroup (underhood/doctor-<random>)
	// when running as root.
	Probe bool
	Euid  int
	// FSType is statfs's f_type for a path; nil means the real statfs.
	FSType func(path string) (int64, error)
	// Words name the workshop's steps and commands in the rows; the
	// workshop (steps.DoctorWords) fills them in, and doctor itself knows
	// no step numbers and no command line. Empty words read neutrally.
	Words Words
}

// Words are what the rows call the workshop's steps and commands.
type Words struct {
	RootSteps    string // the steps that need root, as the workshop numbers them
	MemoryStep   string // the step that limits memory
	DownloadStep string // the step that downloads BusyBox
	Doctor       string // the command that runs doctor as root
	Download     string // the command that downloads BusyBox
}

// orNeutral fills the empty words with phrases that name no command.
func (w Words) orNeutral() Words {
	or := func(s *string, neutral string) {
		if *s == "" {
			*s = neutral
		}
	}
	or(&w.RootSteps, "the steps that run containers")
	or(&w.MemoryStep, "the memory limit")
	or(&w.DownloadStep, "the download")
	or(&w.Doctor, "doctor as root")
	or(&w.Download, "the download")
	return w
}

// Check is one row of the report. Hint says what to do; it is empty on OK.
type Check struct {
	Check  string   `json:"check"`
	Status ui.Level `json:"status"`
	Detail string   `json:"detail"`
	Hint   string   `json:"hint"`
}

// Report is the outcome of Run. The JSON field names are stable.
type Report struct {
	Layout        cgroup.Layout `json:"layout"`
	CgroupRoot    string        `json:"cgroup_root"`
	MemoryRoot    string        `json:"memory_root"`
	MemoryVersion int           `json:"memory_version"`
	Unified       string        `json:"unified"`
	Checks        []Check       `json:"checks"`
	Warnings      int           `json:"warnings"`
	Failures      int           `json:"failures"`
}

// Run performs every check, in the order a workshop attendee meets them.
func Run(o Options) Report {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.FSType == nil {
		o.FSType = cgroup.StatfsType
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.FileRoot == "" {
		o.FileRoot = "/"
	}
	if o.Machine == "" {
		o.Machine, _ = busybox.Machine()
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	o.Words = o.Words.orNeutral()
	d := &doctor{o: o}
	d.environment()
	d.architecture()
	d.root()
	d.kernel()
	d.namespaces()
	h := d.cgroups()
	swap := d.probe(h)
	d.swap(h, swap)
	d.propagation()
	d.busybox()
	d.userns()
	d.network()

	r := Report{Layout: h.Layout, CgroupRoot: h.Root, MemoryRoot: h.MemoryRoot,
		MemoryVersion: h.MemoryVersion, Unified: h.Unified, Checks: d.checks}
	for i, c := range r.Checks {
		switch c.Status {
		case ui.OK:
			r.Checks[i].Hint = ""
		case ui.Warn:
			r.Warnings++
		case ui.Fail:
			r.Failures++
		}
	}
	return r
}

type doctor struct {
	o      Options
	checks []Check
}

func (d *doctor) add(name string, l ui.Level, detail, hint string) {
	d.checks = append(d.checks, Check{Check: name, Status: l, Detail: detail, Hint: hint})
}

func (d *doctor) proc(rel string) string { return filepath.Join(d.o.ProcRoot, rel) }

// Summary is the one line after the table.
func (r Report) Summary() string {
	s := fmt.Sprintf("%s, %s: ", plural(r.Warnings, "warning"), plural(r.Failures, "failure"))
	if r.Failures > 0 {
		return s + "fix the FAIL rows above before the workshop."
	}
	return s + "this machine can run the lab."
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Print writes the report as a table and a summary, or as JSON, and returns
// an ExitError with code 1 (and no message) when a check failed.
func (r Report) Print(o *ui.IO, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		// As check does: the table, then what to do, one hint a line
		// (a column of hints left the details too narrow at 80 columns).
		rows := make([][]string, 0, len(r.Checks))
		var todo []string
		for _, c := range r.Checks {
			status := o.Status(c.Status)
			if c.Status == Info {
				status = o.Cyan(string(Info))
			}
			rows = append(rows, []string{c.Check, status, c.Detail})
			if c.Hint != "" {
				todo = append(todo, fmt.Sprintf("  %s: %s", c.Check, c.Hint))
			}
		}
		o.Table([]string{"CHECK", "STATUS", "DETAIL"}, rows)
		if len(todo) > 0 {
			o.Say()
			o.Say(o.Bold("What to do:"))
			for _, l := range todo {
				o.Hanging(l, 4)
			}
		}
		o.Say()
		o.Hanging(r.Summary(), 0)
	}
	if r.Failures > 0 {
		return &ui.ExitError{Code: 1}
	}
	return nil
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
