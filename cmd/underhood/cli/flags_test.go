package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// Flags go into options; nothing runs.
func TestContainerFlagsIntoOptions(t *testing.T) {
	s, _ := steps.ByName("run")
	var got *steps.ContainerOptions
	c := NewCmdContainer(&globals{}, s, func(o *steps.ContainerOptions) error { got = o; return nil })
	c.SetArgs([]string{"--memory", "8M", "--name", "box1", "--keep", "--cgroup-parent", "underhood/x", "--", "/bin/busybox", "sh"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Memory != 8<<20 || got.Name != "box1" || !got.Keep || got.CgroupParent != "underhood/x" ||
		!slices.Equal(got.Argv, []string{"/bin/busybox", "sh"}) {
		t.Errorf("options: %+v", got)
	}
	chroot, _ := steps.ByName("chroot")
	c = NewCmdContainer(&globals{}, chroot, func(*steps.ContainerOptions) error { return nil })
	c.SetArgs([]string{"--memory", "7M"})
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err == nil {
		t.Error("chroot took --memory")
	}
}

// --net takes host, none or veth; anything else is a usage error that
// names them, before anything runs.
func TestNetFlag(t *testing.T) {
	s, _ := steps.ByName("run")
	for _, c := range []struct {
		args []string
		want string
		ok   bool
	}{{nil, "host", true}, {[]string{"--net", "none"}, "none", true}, {[]string{"--net=veth"}, "veth", true},
		{[]string{"--net", "bridge"}, "", false}, {[]string{"--net", ""}, "", false}} {
		var got *steps.ContainerOptions
		c2 := NewCmdContainer(&globals{}, s, func(o *steps.ContainerOptions) error { got = o; return nil })
		c2.SetArgs(c.args)
		c2.SilenceErrors, c2.SilenceUsage = true, true
		err := c2.Execute()
		switch {
		case c.ok && (err != nil || got == nil || got.Net != c.want):
			t.Errorf("%q: %v, %+v", c.args, err, got)
		case !c.ok && (got != nil || ui.ExitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "host") ||
			!strings.Contains(fmt.Sprint(err), "none") || !strings.Contains(fmt.Sprint(err), "veth")):
			t.Errorf("%q: ran %v, exit %d, %v; want exit 2 naming host, none and veth", c.args, got != nil, ui.ExitCode(err), err)
		}
	}
	for _, c := range []struct {
		args []string
		ok   bool
	}{{[]string{"--isolation", "full"}, true}, {[]string{"--isolation", "article"}, true}, {[]string{"--isolation", "max"}, false}} {
		var got *steps.ContainerOptions
		c2 := NewCmdContainer(&globals{}, s, func(o *steps.ContainerOptions) error { got = o; return nil })
		c2.SetArgs(c.args)
		c2.SilenceErrors, c2.SilenceUsage = true, true
		err := c2.Execute()
		if c.ok != (err == nil) || (c.ok && got.Isolation != c.args[1]) || (!c.ok && (ui.ExitCode(err) != 2 || !strings.Contains(err.Error(), "article") || !strings.Contains(err.Error(), "full"))) {
			t.Errorf("%q: %v, %+v", c.args, err, got)
		}
	}
	var got *steps.ContainerOptions
	c3 := NewCmdContainer(&globals{}, s, func(o *steps.ContainerOptions) error { got = o; return nil })
	c3.SetArgs([]string{"--rootless", "--net", "none"})
	if err := c3.Execute(); err != nil || got == nil || !got.Rootless || got.Net != "none" {
		t.Errorf("--rootless: %v, %+v", err, got)
	}
	chroot, _ := steps.ByName("chroot")
	c := NewCmdContainer(&globals{}, chroot, func(*steps.ContainerOptions) error { return nil })
	c.SetArgs([]string{"--net", "none"})
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err == nil {
		t.Error("chroot took --net")
	}
}

// run grows with Part 2: each step's flag, and --isolation full for all.
func TestRunPart2FlagsIntoOptions(t *testing.T) {
	s, _ := steps.ByName("run")
	parse := func(args ...string) (*steps.ContainerOptions, error) {
		var got *steps.ContainerOptions
		c := NewCmdContainer(&globals{}, s, func(o *steps.ContainerOptions) error { got = o; return nil })
		c.SetArgs(args)
		c.SilenceErrors, c.SilenceUsage = true, true
		return got, c.Execute()
	}
	got, err := parse()
	if err != nil || got.PivotRoot || got.DropPrivileges || got.Pids != cgroup.DefaultPids || got.CPUs != 0 {
		t.Errorf("default: %v, %+v: want the article's container", err, got)
	}
	got, err = parse("--pivot-root", "--pids", "64", "--cpus", "0.5")
	if err != nil || !got.PivotRoot || got.DropPrivileges || got.Pids != 64 || got.CPUs != 0.5 {
		t.Errorf("--pivot-root --pids 64 --cpus 0.5: %v, %+v", err, got)
	}
	got, err = parse("--drop-privileges")
	if err != nil || got.PivotRoot || !got.DropPrivileges {
		t.Errorf("--drop-privileges: %v, %+v", err, got)
	}
	got, err = parse("--isolation", "full", "--", "/bin/busybox", "sh")
	if err != nil || !got.PivotRoot || !got.DropPrivileges || got.Pids != cgroup.DefaultPids || !slices.Equal(got.Argv, []string{"/bin/busybox", "sh"}) {
		t.Errorf("--isolation full: %v, %+v", err, got)
	}
	for _, bad := range [][]string{{"--isolation", "partial"}, {"--isolation", ""}, {"--pids", "0"}, {"--cpus", "none"}} {
		got, err := parse(bad...)
		if got != nil || ui.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v (exit %d), ran with %+v: want exit 2, one line, nothing run", bad, err, ui.ExitCode(err), got)
		}
	}
	if _, err := parse("--isolation", "partial"); err == nil || !strings.Contains(err.Error(), `"partial"`) ||
		!strings.Contains(err.Error(), "article") || !strings.Contains(err.Error(), "full") {
		t.Errorf("--isolation partial: %v: want the value and the accepted ones", err)
	}
}

func TestCheckAndTourFlagsIntoOptions(t *testing.T) {
	var n int
	var opt *steps.CheckOptions
	c := NewCmdCheck(&globals{}, func(k int, o *steps.CheckOptions) error { n, opt = k, o; return nil })
	c.SetArgs([]string{"4", "--rootfs", "/tmp/c", "--json"})
	if err := c.Execute(); err != nil || n != 4 || opt.Rootfs != "/tmp/c" || !opt.JSON {
		t.Errorf("check: %v, n=%d, %+v", err, n, opt)
	}
	var topt *steps.TourOptions
	c = NewCmdTour(&globals{}, func(o *steps.TourOptions) error { topt = o; return nil })
	c.SetArgs([]string{"--from", "5", "--no-pause"})
	if err := c.Execute(); err != nil || topt.From != 5 || !topt.NoPause {
		t.Errorf("tour: %v, %+v", err, topt)
	}
}

func TestStepArgsRewrite(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"step", "3", "--explain"}, []string{"chroot", "--explain"}},
		{[]string{"--workdir", "/x", "step", "7", "--", "sh"}, []string{"--workdir", "/x", "run", "--", "sh"}},
		{[]string{"--no-color", "--workdir=/x", "step", "1"}, []string{"--no-color", "--workdir=/x", "download"}},
		{[]string{"step", "99"}, []string{"step", "99"}},
		{[]string{"step"}, []string{"step"}},
		{[]string{"steps", "3"}, []string{"steps", "3"}},
	} {
		if got := stepArgs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("stepArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
