package inspect

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/proc"
)

// Privileges are what root in the target may do, from /proc/PID/status:
// its capability sets, no_new_privs, and its seccomp mode.
type Privileges struct {
	CapEff     string   `json:"cap_eff"` // hex, as the kernel shows it
	CapPrm     string   `json:"cap_prm"`
	CapBnd     string   `json:"cap_bnd"`
	Effective  []string `json:"effective"` // CapEff's capabilities by name
	NoNewPrivs bool     `json:"no_new_privs"`
	Seccomp    int      `json:"seccomp"` // 0 none, 1 strict, 2 a filter
	// Summary says in a few words how CapEff compares: "every capability",
	// "runc's default set", "none", or a count.
	Summary string `json:"summary"`
}

func privilegesOf(s proc.Summary) *Privileges {
	if !s.HasPrivileges {
		return nil
	}
	p := &Privileges{CapEff: fmt.Sprintf("%016x", s.CapEff), CapPrm: fmt.Sprintf("%016x", s.CapPrm), CapBnd: fmt.Sprintf("%016x", s.CapBnd),
		Effective: caps.Names(s.CapEff), NoNewPrivs: s.NoNewPrivs, Seccomp: s.Seccomp}
	if p.Effective == nil {
		p.Effective = []string{}
	}
	p.Summary = capSummary(s.CapEff, s.CapBnd)
	return p
}

// capSummary compares an effective set with root's and with runc's.
func capSummary(eff, bnd uint64) string {
	runc := caps.Mask(caps.RuncDefault)
	switch {
	case eff == 0:
		return "none"
	case eff == runc:
		return "runc's default set"
	case eff == bnd && bits.OnesCount64(eff) > 30:
		return "every capability of root"
	}
	return fmt.Sprintf("%d capabilities", bits.OnesCount64(eff))
}

// seccompMode names /proc/PID/status's Seccomp.
func seccompMode(n int) string {
	return map[int]string{0: "0, no filter", 1: "1, strict: read, write, exit only", 2: "2, a filter decides on each system call"}[n]
}

// capList is a set's names, cut short for a table.
func capList(names []string, most int) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" … (%d in all)", len(names))
	}
	return strings.Join(names, ", ")
}
