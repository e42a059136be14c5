// Package busybox gets a BusyBox binary onto this machine and checks that it
// can run inside an empty root filesystem: a static ELF executable for this
// machine's architecture, whose checksum is known when it comes from the
// network.
package busybox

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultVersion is the BusyBox release that the pinned download is.
const DefaultVersion = "1.35.0"

// DefaultURL and DefaultSHA256 are the pinned x86_64 build from busybox.net:
// a static musl binary.
const (
	DefaultURL    = "https://busybox.net/downloads/binaries/" + DefaultVersion + "-x86_64-linux-musl/busybox"
	DefaultSHA256 = "6e123e7f3202a8c1e9b1f94d8941580a25135382b99e8d3e34fb858bba311348"
)

// LocalPaths are where a distribution's static BusyBox usually lives
// (Debian and Ubuntu: apt-get install busybox-static).
var LocalPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// Source is where a BusyBox comes from and the SHA-256 it must have.
type Source struct {
	URL    string
	SHA256 string
}

// Machine is the kernel's name for this machine's hardware, the machine
// field of uname(2): "x86_64", "aarch64", …
func Machine() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Machine[:]), nil
}

// Default is the pinned download for this machine.
func Default() (Source, error) {
	m, err := Machine()
	if err != nil {
		return Source{}, err
	}
	return DefaultFor(m)
}

// DefaultFor is the pinned download for a uname(2) machine name. Only x86_64
// has one: busybox.net publishes no aarch64 build that we can vouch for.
func DefaultFor(machine string) (Source, error) {
	const local = "install a static BusyBox from your distribution (apt-get install busybox-static) and use it with --from /bin/busybox"
	switch machine {
	case "x86_64", "amd64":
		return Source{URL: DefaultURL, SHA256: DefaultSHA256}, nil
	case "aarch64", "arm64":
		return Source{}, fmt.Errorf("no pinned BusyBox download for %s: busybox.net has no trustworthy prebuilt aarch64 binary; %s", machine, local)
	}
	return Source{}, fmt.Errorf("no pinned BusyBox download for %s; %s", machine, local)
}

// Hello runs "<path> echo Hello from BusyBox!" and returns what it printed,
// without the final newline.
func Hello(path string) (string, error) {
	out, err := run(path, "echo", "Hello from BusyBox!")
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// Applets lists the commands built into the BusyBox at path
// ("<path> --list"): the names that can be links to it.
func Applets(path string) ([]string, error) {
	out, err := run(path, "--list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		// One file name each, inside bin/: nothing that could climb out.
		if n == "." || n == ".." || n == "busybox" || strings.ContainsRune(n, '/') {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("run %s --list: it listed no applets", path)
	}
	return names, nil
}

// LocalStatic returns the candidates that are static BusyBox executables for
// this machine, each file once (on merged-/usr systems /bin/busybox and
// /usr/bin/busybox are the same file).
func LocalStatic(candidates []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range candidates {
		real, err := filepath.EvalSymlinks(c)
		if err != nil || seen[real] || CheckStatic(c) != nil {
			continue
		}
		seen[real] = true
		out = append(out, c)
	}
	return out
}

func run(path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stderr = &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return nil, fmt.Errorf("run %s %s: %w: %s", path, args[0], err, msg)
		}
		return nil, fmt.Errorf("run %s %s: %w", path, args[0], err)
	}
	return out, nil
}
