package cli

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestInspectNeedsRootMessage(t *testing.T) {
	denied := &fs.PathError{Op: "readlink", Path: "/proc/1/ns/pid", Err: fs.ErrPermission}
	err := inspectErr(denied, "", 1, 1000)
	if err == nil || !strings.HasPrefix(err.Error(), "needs root: run sudo underhood inspect --pid 1") {
		t.Errorf("as a user: %v", err)
	}
	err = inspectErr(denied, "box", 0, 1000)
	if err == nil || !strings.HasPrefix(err.Error(), "needs root: run sudo underhood inspect box") {
		t.Errorf("as a user, by name: %v", err)
	}
	err = inspectErr(denied, "", 1, 0)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "even root") {
		t.Errorf("as root: %v", err)
	}
	if other := errors.New("x"); inspectErr(other, "", 1, 1000) != other {
		t.Error("other errors are changed")
	}
}
