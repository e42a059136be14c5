package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Runtime is an OCI runtime's command line: runc or crun.
type Runtime struct {
	Path  string // the runtime's executable
	State string // its --root: where it keeps its containers' state
}

// Run is `Path --root State run --bundle dir id` in the foreground with the
// given streams, and returns the payload's exit status (runc passes it
// through). Whatever happens, the container is deleted afterwards
// (`delete --force`). Cancelling ctx sends the runtime SIGTERM, which it
// forwards to the container; the runtime dies with underhood (Pdeathsig).
func (r Runtime) Run(ctx context.Context, dir, id string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	defer r.Delete(id)
	cmd := exec.CommandContext(ctx, r.Path, "--root", r.State, "run", "--bundle", dir, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), nil
	case errors.As(err, &ee):
		return 128 + int(ee.Sys().(syscall.WaitStatus).Signal()), nil
	}
	return 0, fmt.Errorf("%s run --bundle %s %s: %w", r.Path, dir, id, err)
}

// Delete removes the container id from the runtime's state, killing what
// is left of it; a container that is not there is no error.
func (r Runtime) Delete(id string) {
	_ = exec.Command(r.Path, "--root", r.State, "delete", "--force", id).Run()
}
