package steps

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/underhood/underhood/lab/ui"
)

type hangup struct{}

func (hangup) Error() string     { return "got hangup" }
func (hangup) Signal() os.Signal { return syscall.SIGHUP }

// A tour waiting for Enter ends with the status of the signal that came:
// 129 for SIGHUP, not 130 (issue 10, item 10).
func TestTourPauseEndsWithTheSignal(t *testing.T) {
	for _, c := range []struct {
		cause error
		want  int
	}{{hangup{}, 129}, {nil, 130}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(c.cause)
		r, w := io.Pipe()
		defer w.Close()
		o, _, _ := testIO()
		tr := &tour{ctx: ctx, o: o, in: bufio.NewReader(r)}
		err := tr.waitEnter("[Enter]", errors.New("stopped"))
		var ee *ui.ExitError
		if !errors.As(err, &ee) || ee.Code != c.want {
			t.Errorf("cause %v: %v, want exit %d", c.cause, err, c.want)
		}
	}
}
