package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/ui"
)

// setprivCmd is page 10's shell with runc's privileges, made by hand.
const setprivCmd = "sudo setpriv --no-new-privs --bounding-set=-all,+audit_write,+kill,+net_bind_service --inh-caps=-all -- /bin/busybox sh"

// Privileges checks step 10 done by hand: a process (the page's setpriv
// shell, left open in another terminal) whose bounding set is runc's three
// capabilities, with no_new_privs set and nothing more in its effective
// set; seccomp, which setpriv does not load, is a warning. underhood's own
// step drops them in its container and leaves nothing.
func Privileges(e Env) []Item {
	want := caps.Mask(caps.RuncDefault)
	var found []procCaps
	ents, _ := filepath.Glob(filepath.Join(e.ProcRoot, "[0-9]*", "status"))
	for _, st := range ents {
		if p, ok := readCaps(st); ok && p.bnd == want {
			found = append(found, p)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].pid < found[j].pid })
	if len(found) == 0 {
		// What this check judges is the page's shell, by hand. Without it,
		// underhood's own step counts if it ran (its containers showed
		// their sets and are gone), as check 9 counts underhood limits.
		if p, _ := e.Workdir.ReadProgress(); !p["privileges"].IsZero() {
			return []Item{{"runc's bounding set", ui.OK, "no shell by hand is open; sudo underhood privileges ran to its end " + when(p["privileges"]) + ", and its containers showed the sets",
				"to judge your own, start the page's shell and keep it open: " + setprivCmd + "; then, from another terminal: sudo underhood check 10"}}
		}
		return []Item{{"runc's bounding set", ui.Fail, "no process has only " + strings.Join(caps.Names(want), ", ") + ", and sudo underhood privileges has not run here",
			"start the page's shell and keep it open: " + setprivCmd + "; then, from another terminal: sudo underhood check 10"},
			skipped("no_new_privs"), skipped("effective set"), skipped("seccomp")}
	}
	p := found[0]
	who := fmt.Sprintf("PID %d (%s)", p.pid, p.name)
	items := []Item{{"runc's bounding set", ui.OK, fmt.Sprintf("%s: CapBnd %016x = %s", who, p.bnd, strings.Join(caps.Names(p.bnd), ", ")), ""}}
	if p.nnp {
		items = append(items, Item{"no_new_privs", ui.OK, who + ": NoNewPrivs 1: no setuid file can give capabilities back", ""})
	} else {
		items = append(items, Item{"no_new_privs", ui.Fail, who + ": NoNewPrivs 0: a setuid file could give capabilities back", "add --no-new-privs: " + setprivCmd})
	}
	if extra := p.eff &^ want; extra != 0 {
		items = append(items, Item{"effective set", ui.Fail, fmt.Sprintf("%s: CapEff %016x holds more: %s", who, p.eff, strings.Join(caps.Names(extra), ", ")), "drop them from every set: " + setprivCmd})
	} else {
		items = append(items, Item{"effective set", ui.OK, fmt.Sprintf("%s: CapEff %016x, within runc's set", who, p.eff), ""})
	}
	if p.seccomp == 2 {
		items = append(items, Item{"seccomp", ui.OK, who + ": Seccomp 2, a filter is loaded", ""})
	} else {
		items = append(items, Item{"seccomp", ui.Warn, fmt.Sprintf("%s: Seccomp %d, no filter: setpriv loads none, runc does", who, p.seccomp),
			"see a filter at work: sudo underhood privileges"})
	}
	return items
}

type procCaps struct {
	pid      int
	name     string
	bnd, eff uint64
	nnp      bool
	seccomp  int
}

// readCaps reads a process's name, capability sets, NoNewPrivs and
// Seccomp from its status file.
func readCaps(status string) (procCaps, bool) {
	b, err := os.ReadFile(status)
	if err != nil {
		return procCaps{}, false
	}
	p := procCaps{seccomp: -1}
	p.pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(status)))
	seen := 0
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.name = v
		case "CapBnd":
			p.bnd, err = strconv.ParseUint(v, 16, 64)
			seen++
		case "CapEff":
			p.eff, err = strconv.ParseUint(v, 16, 64)
			seen++
		case "NoNewPrivs":
			p.nnp = v == "1"
		case "Seccomp":
			p.seccomp, _ = strconv.Atoi(v)
		}
		if err != nil {
			return procCaps{}, false
		}
	}
	return p, seen == 2
}
