package container

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/underhood/underhood/lab/state"
)

type hangup struct{}

func (hangup) Error() string     { return "got hangup" }
func (hangup) Signal() os.Signal { return syscall.SIGHUP }

// A signal that came before Run began is reported as that signal, from
// the context's cause, not as an interrupt (issue 10, item 10); nothing is
// made.
func TestSignalBeforeRunIsTheOneThatCame(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(hangup{})
	w := state.Workdir{Root: filepath.Join(t.TempDir(), "wd")}
	res, err := Run(w, Spec{Kind: "chroot", Rootfs: t.TempDir(), Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if res.Interrupted != syscall.SIGHUP || res.Status() != 129 {
		t.Errorf("interrupted by %v, status %d; want SIGHUP and 129", res.Interrupted, res.Status())
	}
	if _, err := os.Lstat(w.Root); err == nil {
		t.Errorf("a run stopped before it began made %s", w.Root)
	}
}
