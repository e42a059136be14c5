package ns

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The child's command is built without starting it, so its namespaces and
// arguments are checked without root.
func TestCommand(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		clone uintptr
		fg    bool
	}{
		{"chroot only", Config{Flags: Chroot, Root: "/r", Argv: []string{"/bin/busybox", "sh"}}, 0, false},
		{"pid+mnt", Config{Clone: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Flags: Private | MountProc | Chroot, Root: "/r", Argv: []string{"sh"}},
			unix.CLONE_NEWPID | unix.CLONE_NEWNS, false},
		{"terminal", Config{Root: "/r", Argv: []string{"sh"}, Terminal: true}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := Command(c.cfg)
			if cmd.Path != "/proc/self/exe" {
				t.Errorf("path %q, want /proc/self/exe", cmd.Path)
			}
			if cmd.SysProcAttr.Cloneflags != c.clone {
				t.Errorf("clone flags %#x, want %#x", cmd.SysProcAttr.Cloneflags, c.clone)
			}
			if cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL {
				t.Errorf("no SIGKILL on parent death")
			}
			if cmd.SysProcAttr.Foreground != c.fg {
				t.Errorf("foreground %v, want %v", cmd.SysProcAttr.Foreground, c.fg)
			}
			if cmd.Args[1] != InitArg || cmd.Args[5] != "--" || strings.Join(cmd.Args[6:], " ") != strings.Join(c.cfg.Argv, " ") {
				t.Errorf("args %q", cmd.Args)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	t.Setenv("PATH", "/nonexistent:/bin:/usr/bin")
	if p, err := lookPath("sh"); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Errorf("lookPath(sh) = %q, %v", p, err)
	}
	_, err := lookPath("no-such-tool")
	if err == nil || !strings.Contains(err.Error(), "busybox no-such-tool") || !strings.Contains(err.Error(), "rootfs --links") {
		t.Errorf("missing tool error says nothing useful: %v", err)
	}
	if _, err := lookPath("/no/such/file"); err == nil || !strings.Contains(err.Error(), "/no/such/file") {
		t.Errorf("missing path error: %v", err)
	}
}

// The setting that stops user namespaces is named, with its fix; those
// that only bind users do not stop root.
func TestUserNSRefused(t *testing.T) {
	for _, c := range []struct {
		files        map[string]string
		unprivileged bool
		want         string
	}{
		{map[string]string{"user/max_user_namespaces": "15000"}, true, ""},
		{map[string]string{"user/max_user_namespaces": "0"}, false, "user.max_user_namespaces is 0"},
		{map[string]string{"kernel/unprivileged_userns_clone": "0"}, true, "sudo sysctl kernel.unprivileged_userns_clone=1"},
		{map[string]string{"kernel/unprivileged_userns_clone": "0"}, false, ""},
		{map[string]string{"kernel/apparmor_restrict_unprivileged_userns": "1"}, true, "write uid_map: operation not permitted"},
		{map[string]string{"kernel/apparmor_restrict_unprivileged_userns": "0"}, true, ""},
	} {
		dir := t.TempDir()
		for f, v := range c.files {
			p := filepath.Join(dir, f)
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			_ = os.WriteFile(p, []byte(v+"\n"), 0o644)
		}
		got := refused(dir, c.unprivileged)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%v, unprivileged %v: %q, want %q", c.files, c.unprivileged, got, c.want)
		}
	}
}

// A user namespace's first exec runs as its mapped user: underhood
// re-executes itself through /proc/self/exe, which no directory of the
// host's path can close, and the map is Go's to write before that exec.
func TestCommandUserNamespace(t *testing.T) {
	c := Command(Config{Clone: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID, Users: 65534, Group: 65534, Root: "/r", Argv: []string{"sh"}})
	a := c.SysProcAttr
	if c.Path != "/proc/self/exe" || len(a.UidMappings) != 1 || a.UidMappings[0].HostID != 65534 || a.GidMappings[0].HostID != 65534 ||
		a.Credential == nil || a.Credential.Uid != 0 || !a.Credential.NoSetGroups {
		t.Errorf("path %s, attr %+v", c.Path, a)
	}
	if c := Command(Config{Self: "/x/init", Clone: syscall.CLONE_NEWUSER}); c.Path != "/x/init" {
		t.Errorf("Self given: %s", c.Path)
	}
}
