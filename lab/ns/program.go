package ns

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// InitProgram is the small program that becomes a container's first
// process, looked for beside underhood's own executable (make build puts it
// there). It holds only this package: it initialises about 20 Go packages
// where underhood initialises about 100 (GODEBUG=inittrace=1), and every
// container start pays that once more. Where it is missing, or not safe to
// run as root, underhood re-executes itself instead: the same code, a
// slower start.
const InitProgram = "underhood-init"

// selfExe is underhood re-executing itself.
const selfExe = "/proc/self/exe"

var initPath = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return selfExe
	}
	return FindInit(exe)
})

// FindInit returns the path of InitProgram beside exe if it is safe to
// exec as root: a regular executable file that only its owner can write,
// owned by root or by exe's owner, in a directory that only its owner can
// write. Anything else could be swapped by another user for a program of
// theirs, which underhood would then run as root: then /proc/self/exe.
func FindInit(exe string) string {
	ex, err := os.Stat(exe)
	if err != nil {
		return selfExe
	}
	dir := filepath.Dir(exe)
	p := filepath.Join(dir, InitProgram)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return selfExe
	}
	di, err := os.Stat(dir)
	if err != nil || !safeOwner(fi, ex) || !safeOwner(di, ex) {
		return selfExe
	}
	return p
}

// safeOwner: fi is writable by its owner alone, and that owner is root or
// the owner of ref (underhood's executable).
func safeOwner(fi, ref os.FileInfo) bool {
	st, ok1 := fi.Sys().(*syscall.Stat_t)
	rs, ok2 := ref.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	return st.Uid == 0 || st.Uid == rs.Uid
}
