package busybox

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
)

// arch names, for each Go architecture, the ELF machine its binaries carry
// and how people call it.
var arch = map[string]struct {
	machine elf.Machine
	name    string
}{
	"amd64":   {elf.EM_X86_64, "x86_64"},
	"arm64":   {elf.EM_AARCH64, "aarch64"},
	"386":     {elf.EM_386, "i386"},
	"arm":     {elf.EM_ARM, "arm"},
	"riscv64": {elf.EM_RISCV, "riscv64"},
	"ppc64le": {elf.EM_PPC64, "ppc64le"},
	"s390x":   {elf.EM_S390, "s390x"},
	"loong64": {elf.EM_LOONGARCH, "loongarch64"},
}

func machineName(m elf.Machine) string {
	for _, a := range arch {
		if a.machine == m {
			return a.name
		}
	}
	return m.String()
}

// CheckStatic makes sure path can run inside an empty root filesystem: an
// ELF executable for this machine's architecture that needs no dynamic
// loader (no PT_INTERP program header). A static PIE, ET_DYN without
// PT_INTERP, counts as static.
func CheckStatic(path string) error {
	return checkStatic(path, runtime.GOARCH)
}

// CheckStaticFor is CheckStatic for the Go architecture goarch ("arm64").
func CheckStaticFor(path, goarch string) error { return checkStatic(path, goarch) }

// MachineName is the kernel's name (uname -m) for a Go architecture:
// "x86_64" for amd64, "aarch64" for arm64; "" for one it does not know.
func MachineName(goarch string) string { return arch[goarch].name }

func checkStatic(path, goarch string) error {
	// O_NONBLOCK: a FIFO given as BusyBox must not hang the check.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("check BusyBox: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check BusyBox: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not an ELF executable: give the BusyBox file itself (e.g. %s)", path, filepath.Join(path, "busybox"))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not an ELF executable: it is not a regular file (%s)", path, fileType(fi.Mode()))
	}
	return checkStaticAt(f, path, goarch)
}

// checkStaticFile is CheckStatic of an open file, named path in messages.
func checkStaticFile(f io.ReaderAt, path string) error {
	return checkStaticAt(f, path, runtime.GOARCH)
}

func checkStaticAt(f io.ReaderAt, path, goarch string) error {
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable%s", path, describeStart(f))
	}
	switch ef.Type {
	case elf.ET_EXEC:
	case elf.ET_DYN:
		// A shared library has no entry point; a static PIE has one.
		if ef.Entry == 0 {
			return fmt.Errorf("%s is not an ELF executable: it is a shared library", path)
		}
	default:
		return fmt.Errorf("%s is not an ELF executable: its ELF type is %s", path, ef.Type)
	}
	if a, ok := arch[goarch]; ok && ef.Machine != a.machine {
		return fmt.Errorf("%s is built for %s, but this machine is %s; use a BusyBox built for %s", path, machineName(ef.Machine), a.name, a.name)
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
		needs := strings.TrimRight(string(interp), "\x00")
		if needs == "" {
			needs = "a dynamic loader"
		}
		return &DynamicError{Path: path, Needs: needs}
	}
	return nil
}

// DynamicError: the program at Path needs a dynamic loader (Needs) that a
// container's root filesystem does not have.
type DynamicError struct{ Path, Needs string }

func (e *DynamicError) Error() string {
	return fmt.Sprintf("%s is dynamically linked (needs %s), and that loader is not inside the container's root filesystem; use a static BusyBox, e.g. /bin/busybox from busybox-static", e.Path, e.Needs)
}

// describeStart shows how a non-ELF file begins, which often says what it
// is: a script, or an HTML error page saved in place of a binary.
func describeStart(r io.ReaderAt) string {
	buf := make([]byte, 40)
	n, _ := r.ReadAt(buf, 0)
	if n == 0 {
		return ": it is empty"
	}
	head := buf[:n]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	s := string(head)
	for _, c := range s {
		if !unicode.IsPrint(c) && c != '\t' {
			return ""
		}
	}
	return fmt.Sprintf(": it is text that begins %q", s)
}
