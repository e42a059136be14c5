package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/rootfs"
	"github.com/underhood/underhood/lab/ui"
)

// Busybox checks what downloading BusyBox leaves: an executable, static
// BusyBox at e.Busybox that runs.
func Busybox(e Env) []Item {
	p := e.Busybox
	get := e.fix(
		"download it: mkdir -p "+filepath.Dir(p)+" && wget -O "+p+" "+busybox.DefaultURL+"; or copy the static one of busybox-static: mkdir -p "+filepath.Dir(p)+" && cp /bin/busybox "+p,
		"sudo underhood download (without network: sudo apt-get install busybox-static, then sudo underhood download --from /bin/busybox)")
	var items []Item
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return append(items, Item{"file", ui.Fail, "nothing at " + p, get},
			skipped("executable"), skipped("static"), skipped("runs"))
	case err != nil:
		return append(items, Item{"file", ui.Fail, err.Error(), get},
			skipped("executable"), skipped("static"), skipped("runs"))
	case !fi.Mode().IsRegular():
		return append(items, Item{"file", ui.Fail, p + " is not a regular file (" + fi.Mode().Type().String() + ")", get},
			skipped("executable"), skipped("static"), skipped("runs"))
	}
	if fi.Size() == 0 {
		// What a failed wget -O leaves, renamed and made executable.
		return append(items, Item{"file", ui.Fail, p + " is empty (0 B): a download that failed leaves one", "remove it: rm " + p + "; then " + get},
			skipped("executable"), skipped("static"), skipped("runs"))
	}
	if head := fileHead(p, 16); !strings.HasPrefix(head, "\x7fELF") {
		// A web page, say: what a wrong URL or a captive proxy leaves;
		// chmod +x would not help it.
		return append(items, Item{"file", ui.Fail, fmt.Sprintf("%s is not a program (%s, beginning %q): a download of the wrong thing, a web page perhaps", p, fileSize(fi), head), "remove it: rm " + p + "; then " + get},
			skipped("executable"), skipped("static"), skipped("runs"))
	}
	items = append(items, Item{"file", ui.OK, fmt.Sprintf("%s, %s", p, fileSize(fi)), ""})
	ok := true
	if fi.Mode().Perm()&0o111 == 0 {
		ok = false
		items = append(items, Item{"executable", ui.Fail, fmt.Sprintf("mode %04o: nobody may run it", fi.Mode().Perm()), e.sudo("chmod +x " + p)})
	} else {
		items = append(items, Item{"executable", ui.OK, fmt.Sprintf("mode %04o", fi.Mode().Perm()), ""})
	}
	if err := busybox.CheckStatic(p); err != nil {
		ok = false
		items = append(items, Item{"static", ui.Fail, err.Error(), e.fix(
			"use a static BusyBox: sudo apt-get install busybox-static && cp /bin/busybox "+p,
			"sudo underhood download, or with busybox-static installed: sudo underhood download --from /bin/busybox")})
	} else {
		items = append(items, Item{"static", ui.OK, "a static ELF executable: it needs no libraries, so it can run in an empty root", ""})
	}
	if !ok {
		return append(items, skipped("runs"))
	}
	return append(items, hello(e, p, get))
}

// fileHead is the first n bytes of path, as text ("" if unreadable).
func fileHead(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, n)
	k, _ := io.ReadFull(f, b)
	return string(b[:k])
}

func hello(e Env, p, get string) Item {
	out, err := e.Try(Probe{Kind: TryHello, Path: p})
	if err != nil {
		return Item{"runs", ui.Fail, err.Error(), get}
	}
	if strings.TrimSpace(out) != "Hello from BusyBox!" {
		return Item{"runs", ui.Fail, fmt.Sprintf("busybox echo Hello from BusyBox! printed %q", out), get}
	}
	return Item{"runs", ui.OK, "busybox echo Hello from BusyBox! prints Hello from BusyBox!", ""}
}

func skipped(name string) Item {
	return Item{Check: name, Status: Skip, Detail: "not looked at until the rows above pass"}
}

// Layout checks what preparing the root filesystem leaves: the directory
// e.Rootfs with bin dev etc proc sys, and BusyBox copied into bin.
func Layout(e Env) []Item {
	r := e.Rootfs
	dirs := strings.Join(rootfs.Layout(), " ")
	items := []Item{rootDir(e)}
	if items[0].Status != ui.OK {
		return append(items, skipped(dirs), skipped("bin/busybox"))
	}
	var missing, wrong []string
	for _, d := range rootfs.Layout() {
		fi, err := os.Lstat(filepath.Join(r, d))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, d)
		case err != nil || !fi.IsDir():
			wrong = append(wrong, d)
		}
	}
	switch {
	case len(wrong) > 0:
		items = append(items, Item{dirs, ui.Fail,
			fmt.Sprintf("%s: not a directory (a file or a symbolic link is there)", strings.Join(wrong, ", ")),
			fmt.Sprintf("cd %s && %s && %s", r, e.sudo("rm "+strings.Join(wrong, " ")), e.sudo("mkdir "+strings.Join(append(wrong, missing...), " ")))})
	case len(missing) > 0:
		items = append(items, Item{dirs, ui.Fail, "missing: " + strings.Join(missing, ", "),
			e.fix(fmt.Sprintf("cd %s && mkdir -p %s", r, strings.Join(missing, " ")), "sudo underhood rootfs")})
	default:
		items = append(items, Item{dirs, ui.OK, "all five are directories", ""})
	}
	return append(items, binBusybox(e, false))
}

// rootDir checks that e.Rootfs is a real directory, reached without
// symbolic links.
func rootDir(e Env) Item {
	r := e.Rootfs
	mk := e.fix(fmt.Sprintf("mkdir -p %s && cd %s && mkdir -p %s", r, r, strings.Join(rootfs.Layout(), " ")), "sudo underhood rootfs")
	fi, err := os.Lstat(r)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Item{"directory", ui.Fail, "no directory " + r, mk}
	case err != nil:
		return Item{"directory", ui.Fail, err.Error(), mk}
	case !fi.IsDir():
		return Item{"directory", ui.Fail, r + " is not a directory", "give the right path with --rootfs, or: " + mk}
	}
	if err := rootfs.Safe(r); err != nil {
		return Item{"directory", ui.Fail, err.Error(), "give the real path, without symbolic links"}
	}
	return Item{"directory", ui.OK, r, ""}
}

// binBusybox checks bin/busybox in the root: there (step 2), and with exec
// also executable (step 3).
func binBusybox(e Env, exec bool) Item {
	r := e.Rootfs
	p := rootfs.Busybox(r)
	cp := e.fix("cp ~/Downloads/busybox "+filepath.Join(r, "bin")+"/", "sudo underhood rootfs")
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Item{"bin/busybox", ui.Fail, "not there: BusyBox is not copied in yet", cp}
	case err != nil:
		return Item{"bin/busybox", ui.Fail, err.Error(), cp}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, _ := os.Readlink(p)
		return Item{"bin/busybox", ui.Fail, fmt.Sprintf("a symbolic link to %s: inside the new root that path means something else, or nothing", t),
			e.fix("replace it with a copy: cp --remove-destination ~/Downloads/busybox "+p, "sudo underhood rootfs")}
	case !fi.Mode().IsRegular():
		return Item{"bin/busybox", ui.Fail, "not a regular file (" + fi.Mode().Type().String() + ")", cp}
	case exec && fi.Mode().Perm()&0o111 == 0:
		return Item{"bin/busybox", ui.Fail, fmt.Sprintf("mode %04o: not executable, so chroot cannot start it", fi.Mode().Perm()), e.sudo("chmod +x " + p)}
	}
	if exec {
		return Item{"bin/busybox", ui.OK, fmt.Sprintf("%s, mode %04o", fileSize(fi), fi.Mode().Perm()), ""}
	}
	// A file that only has BusyBox's name is no BusyBox: a script there
	// would pass for one until something runs it.
	if err := busybox.CheckStatic(p); err != nil {
		return Item{"bin/busybox", ui.Fail, err.Error(), e.fix(
			"copy a static one over it: cp --remove-destination ~/Downloads/busybox "+p,
			"sudo underhood rootfs puts the verified BusyBox back")}
	}
	return Item{"bin/busybox", ui.OK, "a copy of BusyBox, a static ELF, " + fileSize(fi), ""}
}

// Chroot checks that BusyBox can run chrooted into the root filesystem:
// bin/busybox executable and static, and a real chroot that runs it.
func Chroot(e Env) []Item {
	bin := binBusybox(e, true)
	items := []Item{bin}
	if bin.Status != ui.OK {
		return append(items, skipped("static"), skipped("chroot"))
	}
	p := rootfs.Busybox(e.Rootfs)
	if err := busybox.CheckStatic(p); err != nil {
		return append(items, Item{"static", ui.Fail, err.Error(), e.fix(
			"copy a static one over it: cp /bin/busybox "+p+" (sudo apt-get install busybox-static)",
			"sudo underhood download --from /bin/busybox && sudo underhood rootfs (with busybox-static installed)")},
			skipped("chroot"))
	}
	items = append(items, Item{"static", ui.OK, "it needs no libraries, and the new root has none", ""})
	return append(items, tryChroot(e))
}

func tryChroot(e Env) Item {
	if e.Euid != 0 {
		return Item{"chroot", ui.Fail, "not tried: needs root", needRoot}
	}
	out, err := e.Try(Probe{Kind: TryChroot, Path: e.Rootfs})
	what := "chroot " + e.Rootfs + " /bin/busybox ls /"
	if err != nil {
		return Item{"chroot", ui.Fail, fmt.Sprintf("%s: %v", what, err), e.fix("try it yourself and read the error: sudo chroot "+e.Rootfs+" /bin/busybox sh", "sudo underhood rootfs, then check again")}
	}
	seen := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(" "+seen+" ", " bin ") {
		return Item{"chroot", ui.Fail, fmt.Sprintf("%s listed %q: no bin", what, seen), "check that you gave the right directory"}
	}
	return Item{"chroot", ui.OK, what + " lists " + seen, ""}
}
