package inspect

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// quitOnQ lets a watch on a terminal end with q, as a pager does: the
// terminal stops waiting for whole lines and echoing (ICANON and ECHO
// off), but keeps its signals (ISIG), so Ctrl-C works as before. cancel
// is called when q arrives; restore puts the terminal back as it was, and
// must be called before the watch returns. in that is not a terminal
// changes nothing.
func quitOnQ(in any, cancel context.CancelFunc) (restore func()) {
	f, ok := in.(*os.File)
	if !ok {
		return func() {}
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {} // not a terminal
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	go func() {
		b := make([]byte, 1)
		for {
			n, err := f.Read(b)
			if err != nil {
				return
			}
			if n == 1 && (b[0] == 'q' || b[0] == 'Q') {
				cancel()
				return
			}
		}
	}()
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}
