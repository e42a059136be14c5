package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/underhood/underhood/lab/caps"
	"github.com/underhood/underhood/lab/ui"
)

// The rows of the privileges check.
const (
	rowCapEff   = "effective capabilities"
	rowCapBnd   = "bounding set"
	rowNNP      = "no_new_privs"
	rowSeccomp  = "seccomp"
	privsByHand = "C=cap_kill,cap_net_bind_service,cap_audit_write; sudo capsh --chroot=%s --inh=$C --addamb=$C --secbits=1 --drop=all --no-new-privs --shell=/bin/busybox -- sh"
)

// Privileges checks privileges dropped by hand, as the page does with
// capsh: a shell whose root is the root filesystem, with no capability in
// its effective and bounding sets beyond runc's three, no_new_privs set,
// and, if it has one, a seccomp filter. The shell is looked for while it
// runs, in another terminal; underhood's own step leaves none, so without
// one the check says whether that step has shown it.
func Privileges(e Env) []Item {
	root := readyRoot(e)
	items := []Item{root}
	rest := []string{rowShell, rowCapEff, rowCapBnd, rowNNP, rowSeccomp}
	start := fmt.Sprintf(privsByHand, e.Rootfs)
	if root.Status != ui.OK {
		return append(items, skipAll(rest)...)
	}
	if e.Euid != 0 {
		return append(items, Item{rowShell, ui.Fail, "not looked at: another user's processes cannot be read", needRoot}.then(rest[1:])...)
	}
	ps, err := findInRoot(e)
	if err != nil {
		return append(items, Item{rowShell, ui.Fail, err.Error(), "run the check on Linux, with /proc mounted"}.then(rest[1:])...)
	}
	if len(ps) == 0 && !e.ByHand {
		return append(items, stepShown(e, "privileges", "showed mount, mknod and the escape refused with runc's privileges"))
	}
	if len(ps) == 0 {
		return append(items, Item{rowShell, ui.Fail, "no process has its root in " + e.Rootfs + " now",
			"in another terminal, start a shell with fewer privileges and leave it open: " + start}.then(rest[1:])...)
	}
	// The one with the fewest privileges.
	best := slices.MinFunc(ps, func(a, b inRoot) int {
		if d := extra(a, "CapEff") - extra(b, "CapEff"); d != 0 {
			return d
		}
		return a.PID - b.PID
	})
	detail := fmt.Sprintf("%s has its root in %s", best, e.Rootfs)
	if len(ps) > 1 {
		detail += fmt.Sprintf(" (and %d more)", len(ps)-1)
	}
	items = append(items, Item{rowShell, ui.OK, detail, ""})
	runc := caps.Mask(caps.RuncDefault)
	for _, set := range []struct{ row, field, why string }{
		{rowCapEff, "CapEff", "what the kernel checks on each privileged call"},
		{rowCapBnd, "CapBnd", "what root gets back at its next execve"},
	} {
		v, err := strconv.ParseUint(best.Status[set.field], 16, 64)
		if err != nil {
			items = append(items, Item{set.row, ui.Fail, fmt.Sprintf("no %s in /proc/%d/status", set.field, best.PID), "run the check on Linux, with /proc mounted"})
			continue
		}
		more := v &^ runc
		if more == 0 {
			items = append(items, Item{set.row, ui.OK, fmt.Sprintf("%s %016x: %s, no more than runc's (%s)", set.field, v, describeCaps(v), set.why), ""})
			continue
		}
		hint := "exit that shell and start it with fewer: " + start
		if set.field == "CapBnd" && items[len(items)-1].Status == ui.Fail {
			hint = "the same capsh command empties it too (--drop=all)"
		}
		items = append(items, Item{set.row, ui.Fail, fmt.Sprintf("%s %016x: %d beyond runc's three, %s (%s)", set.field, v, len(caps.Names(more)), notable(more), set.why), hint})
	}
	nnp := "exit that shell and start it with --no-new-privs: " + start
	if slices.ContainsFunc(items, func(it Item) bool { return it.Status == ui.Fail }) {
		nnp = "the capsh command above sets it too (--no-new-privs)"
	}
	if best.Status["NoNewPrivs"] == "1" {
		items = append(items, Item{rowNNP, ui.OK, "NoNewPrivs 1: no setuid file nor file capability gives any back", ""})
	} else {
		items = append(items, Item{rowNNP, ui.Fail, "NoNewPrivs " + orUnknown(best.Status["NoNewPrivs"]) + ": a setuid file would run with its owner's privileges", nnp})
	}
	switch best.Status["Seccomp"] {
	case "2":
		items = append(items, Item{rowSeccomp, ui.OK, "Seccomp 2: a filter decides on its system calls", ""})
	default:
		items = append(items, Item{rowSeccomp, ui.Warn, "Seccomp " + orUnknown(best.Status["Seccomp"]) + ": no filter; no shell command loads one, so by hand that is expected",
			"see one: sudo underhood privileges -- /bin/busybox grep Seccomp /proc/self/status"})
	}
	return items
}

func orUnknown(v string) string {
	if v == "" {
		return "(not shown)"
	}
	return v
}

// extra counts a process's capabilities beyond runc's in field.
func extra(p inRoot, field string) int {
	v, err := strconv.ParseUint(p.Status[field], 16, 64)
	if err != nil {
		return 64
	}
	return len(caps.Names(v &^ caps.Mask(caps.RuncDefault)))
}

func describeCaps(v uint64) string {
	if v == 0 {
		return "none"
	}
	return strings.Join(caps.Names(v), ", ")
}

// notable names the capabilities that matter most in a container first.
func notable(more uint64) string {
	var named []string
	for _, c := range caps.Names(more) {
		if c == "CAP_SYS_ADMIN" || c == "CAP_SYS_CHROOT" || c == "CAP_MKNOD" || c == "CAP_SYS_MODULE" {
			named = append(named, c)
		}
	}
	if len(named) == 0 {
		return "among them " + caps.Names(more)[0]
	}
	return "among them " + strings.Join(named, ", ")
}

// stepShown is underhood's own step, which leaves nothing to look at: when
// it last ran to its end.
func stepShown(e Env, step, what string) Item {
	const name = "underhood's step"
	p, err := e.Workdir.ReadProgress()
	if err != nil {
		return Item{name, ui.Warn, err.Error(), "sudo underhood " + step}
	}
	t, ok := p[step]
	if !ok {
		return Item{name, ui.Fail, "sudo underhood " + step + " has not run to its end yet (and no shell has its root in " + e.Rootfs + ")",
			"sudo underhood " + step + ", or by hand: " + fmt.Sprintf(privsByHand, e.Rootfs)}
	}
	return Item{name, ui.OK, fmt.Sprintf("sudo underhood %s %s, at %s (it leaves no container to look at; to check yours: --rootfs)", step, what, t.UTC().Format("2006-01-02 15:04 UTC")), ""}
}
