package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps/check"
)

func init() {
	register(&Step{Name: "download", Title: "Download BusyBox", Part: Article, Kind: Setup,
		Page:    "01-download-busybox.md",
		Code:    []string{"lab/busybox/fetch.go Fetch", "lab/busybox/elf.go CheckStatic"},
		Explain: explainDownload, Done: busyboxDone,
		Check: StepCheck{Run: check.Busybox, Looks: "a BusyBox that is executable, static and runs", Target: func(e check.Env) string { return e.Busybox },
			ByHand: "build the root filesystem by hand"},
		Tour: TourStop{About: [2]string{
			"BusyBox is one static binary with hundreds of Unix tools in it.",
			"An empty root filesystem has no libraries, so whatever runs in it must need none.",
		}, Cmd: "sudo underhood download", Demo: (*tour).download},
	})
}

var explainDownload = Explanation{
	What: "Fetches one static BusyBox binary, checks its SHA-256 against a pinned value, makes it executable and runs it once to show that it works.",
	Why: "An empty root filesystem has no shell, no ls and no shared libraries, so whatever runs in the container must bring everything with it. " +
		"BusyBox is hundreds of Unix tools in a single statically linked file: copy that one file into the container and it has a complete userland.",
	Shell: []string{
		"mkdir -p ~/Downloads && cd ~/Downloads",
		"wget -O busybox-x86_64 " + busybox.DefaultURL,
		"mv busybox-x86_64 busybox",
		"chmod +x busybox",
		"./busybox echo Hello from BusyBox!",
	},
	Syscalls: []string{
		"uname(2)                                   the machine: x86_64 has a pinned download",
		"connect(2) + read(2)                       HTTPS GET, hashed with SHA-256 while it streams",
		"open(O_CREAT|O_EXCL) + write(2) + fchmod(0755) + fsync(2)   a temporary file beside the target",
		"rename(2)                                  into place only if the checksum matches",
		"execve(\"<workdir>/busybox\", [\"busybox\", \"echo\", \"Hello from BusyBox!\"])",
	},
	Differs: "The article runs whatever the download gives. underhood pins the SHA-256 and refuses a file that does not match, " +
		"checks that the binary is a static ELF for this machine (a dynamically linked one would fail in the container with a puzzling 'not found'), " +
		"and never leaves a half-written file, even on Ctrl-C. Without network it can take a distribution's static BusyBox instead: " +
		"apt-get install busybox-static, then underhood download --from /bin/busybox.",
	Observe: "ls -l /var/lib/underhood/busybox and file /var/lib/underhood/busybox (in the default work directory): one file of one or two MiB, 'statically linked'. " +
		"Run it with a command name, e.g. /var/lib/underhood/busybox ls /: one binary, many commands, picked by its first argument or by the name it is called by.",
}

// DownloadOptions are what a user can set on step 1.
type DownloadOptions struct {
	URL, SHA256 string // another download than the pinned one; both or neither
	From        string // copy this local static BusyBox instead of downloading
	NoFallback  bool   // fail rather than use a local BusyBox when the download fails
	// FallbackOnMismatch uses a local BusyBox even when the download came
	// but its checksum is wrong; without it a mismatch always fails.
	FallbackOnMismatch bool
	Client             *http.Client
	Fallbacks          []string // local BusyBoxes to fall back on; nil = busybox.LocalPaths
}

// installHint is how to get BusyBox without busybox.net.
const installHint = "to use your distribution's static BusyBox instead: sudo apt-get install busybox-static, then sudo underhood download --from /bin/busybox"

// Download is step 1: it leaves a verified static BusyBox at w.Busybox().
func Download(ctx context.Context, o *ui.IO, w state.Workdir, opt DownloadOptions) error {
	return downloadBusybox(ctx, o, w, opt, true)
}

func downloadBusybox(ctx context.Context, o *ui.IO, w state.Workdir, opt DownloadOptions, sayNext bool) error {
	// Everything the user typed is checked before anything is created.
	src, err := downloadSource(opt)
	if err != nil {
		return err
	}
	dest := w.Busybox()
	if opt.From != "" {
		if err := busybox.CheckStatic(opt.From); err != nil {
			return ui.Usage(fmt.Errorf("--from: %w", err))
		}
	}
	if err := execAllowed(w.Root); err != nil {
		return err
	}
	if err := w.Ensure(); err != nil {
		return err
	}
	if removed, _ := busybox.RemoveStaleParts(dest); len(removed) > 0 {
		o.Note("Removed %s left by a download that was killed before it finished: %s.",
			plural(int64(len(removed)), "partial file", "partial files"), strings.Join(removed, ", "))
	}

	switch {
	case opt.From != "":
		if err := busybox.Install(opt.From, dest); err != nil {
			return err
		}
		o.Note("%s copied %s to %s (%s).", stepTag(o, of("download")), opt.From, dest, busyboxDetail(dest))
	case src.err != nil:
		if err := useLocalBusybox(o, opt, dest, src.err); err != nil {
			return err
		}
	default:
		if err := fetchBusybox(ctx, o, opt.Client, src.Source, dest); err != nil {
			if ctx.Err() != nil {
				return err // Ctrl-C: stop, do not fall back
			}
			if err := useLocalBusybox(o, opt, dest, err); err != nil {
				return err
			}
		}
	}

	// What later steps run on the host is checked against this record.
	if _, err := busybox.Record(dest); err != nil {
		return err
	}
	out, err := busybox.Hello(dest)
	if err != nil {
		return fmt.Errorf("BusyBox at %s does not run: %w; fetch it again with 'sudo underhood download'", dest, err)
	}
	o.Note("$ %s echo Hello from BusyBox!", dest)
	o.Say(out)
	if sayNext {
		if os.Geteuid() != 0 {
			// A user (page 13's rootless run) goes on without sudo.
			inv := o.Invocation
			if inv == "" {
				inv = "underhood"
			}
			o.Next("as a user, without sudo: " + inv + " run --rootless (docs/13-user-namespace.md); with root, step 2: sudo underhood rootfs")
		} else {
			o.Next(of("download").NextHint())
		}
	}
	return nil
}

// busyboxSource is where step 1 downloads from, or why there is no download
// for this machine.
type busyboxSource struct {
	busybox.Source
	err error
}

func downloadSource(opt DownloadOptions) (busyboxSource, error) {
	switch {
	case opt.From != "" && (opt.URL != "" || opt.SHA256 != ""):
		return busyboxSource{}, ui.Usagef("--from copies a local file; it does not go with --url or --sha256")
	case opt.From != "":
		return busyboxSource{}, nil
	case opt.URL == "" && opt.SHA256 != "":
		return busyboxSource{}, ui.Usagef("--sha256 goes with --url: the default download has its own pinned checksum")
	case opt.URL == "":
		s, err := busybox.Default()
		return busyboxSource{Source: s, err: err}, nil
	case opt.SHA256 == "":
		return busyboxSource{}, ui.Usagef("--url needs --sha256: underhood installs a download only when it knows the checksum to expect (take it from a source you trust, or run sha256sum on a copy you checked)")
	}
	u, err := url.Parse(opt.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return busyboxSource{}, ui.Usagef("--url %q: want an http:// or https:// URL", opt.URL)
	}
	sum, err := busybox.ParseSHA256(opt.SHA256)
	if err != nil {
		return busyboxSource{}, ui.Usage(fmt.Errorf("--sha256: %w", err))
	}
	return busyboxSource{Source: busybox.Source{URL: opt.URL, SHA256: sum}}, nil
}

// fetchBusybox downloads src to dest with a progress bar on a terminal, or
// a line before and after otherwise.
func fetchBusybox(ctx context.Context, o *ui.IO, client *http.Client, src busybox.Source, dest string) error {
	if sum, err := busybox.FileSHA256(dest); err == nil && sum == src.SHA256 {
		o.Note("%s %s is already here and its SHA-256 matches: nothing to download.", stepTag(o, of("download")), dest)
		return nil
	}
	if client == nil {
		client = defaultClient()
	}
	o.Note("%s downloading %s", stepTag(o, of("download")), src.URL)
	var bar *progressbar.ProgressBar
	progress := func(done, total int64) {
		if bar == nil && o.OutTTY {
			bar = newDownloadBar(o, total)
		}
		if bar != nil {
			bar.Set64(done)
		}
	}
	start := time.Now()
	_, err := busybox.Fetch(ctx, client, src.URL, src.SHA256, dest, progress)
	if bar != nil {
		bar.Clear() // the next line, "Downloaded" or the error, takes its place
		bar.Exit()
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return fmt.Errorf("downloaded BusyBox: %w", err)
	}
	o.Note("Downloaded %s in %.1fs to %s; SHA-256 %s matches.", downloadSize(fi.Size()), time.Since(start).Seconds(), dest, src.SHA256[:12]+"…")
	return nil
}

func newDownloadBar(o *ui.IO, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(o.Err),
		progressbar.OptionSetDescription("busybox"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionEnableColorCodes(o.Color),
		progressbar.OptionClearOnFinish(),
	)
}

// defaultClient gives up on a server that does not answer, but not on a
// slow download: Ctrl-C stops that.
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// useLocalBusybox is what happens when the download failed: a static BusyBox
// installed on this machine, said loudly, or an error that says how to get one.
func useLocalBusybox(o *ui.IO, opt DownloadOptions, dest string, failure error) error {
	cands := opt.Fallbacks
	if cands == nil {
		cands = busybox.LocalPaths
	}
	local := busybox.LocalStatic(cands)
	mismatch := errors.Is(failure, busybox.ErrChecksum) && !opt.FallbackOnMismatch
	switch {
	case mismatch && len(local) > 0:
		// A download whose checksum is wrong may have been tampered with:
		// that is not a failure to paper over, unless asked.
		return fmt.Errorf("%w\nThe file that came is not the one expected (a wrong --sha256, a changed file on the server, or someone in between); nothing was installed. "+
			"To use the static BusyBox installed at %s instead: 'sudo underhood download --from %s', or add --fallback-on-mismatch", failure, local[0], local[0])
	case mismatch:
		return fmt.Errorf("%w\nThe file that came is not the one expected (a wrong --sha256, a changed file on the server, or someone in between); nothing was installed; %s", failure, installHint)
	case len(local) == 0:
		return fmt.Errorf("%w\nNo static BusyBox is installed on this machine either; %s", failure, installHint)
	case opt.NoFallback:
		return fmt.Errorf("%w\n--no-fallback, so the static BusyBox installed at %s was not used: run 'sudo underhood download --from %s' to use it (on a machine without one: sudo apt-get install busybox-static first)", failure, local[0], local[0])
	}
	o.Warnf("%s", o.Bold("THE DOWNLOAD FAILED: "+failure.Error()))
	o.Warnf("%s", o.Bold("USING THE STATIC BUSYBOX INSTALLED AT "+local[0]+" INSTEAD, not the pinned download (pass --no-fallback to fail instead)."))
	if err := busybox.Install(local[0], dest); err != nil {
		return fmt.Errorf("%w\nand copying %s failed too: %w", failure, local[0], err)
	}
	o.Note("%s copied %s to %s (%s).", stepTag(o, of("download")), local[0], dest, busyboxDetail(dest))
	return nil
}

// busyboxDone: step 1 is done when a static BusyBox for this machine is in
// the work directory.
func busyboxDone(w state.Workdir) (bool, string) {
	if _, err := os.Stat(w.Busybox()); err != nil {
		return false, "missing"
	}
	if err := busybox.CheckStatic(w.Busybox()); err != nil {
		return false, "not a static BusyBox for this machine"
	}
	return true, busyboxDetail(w.Busybox())
}

// busyboxDetail says what the BusyBox at path is: its size, static, and
// pinned or not.
func busyboxDetail(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	d := downloadSize(fi.Size()) + ", static ELF"
	if sum, err := busybox.FileSHA256(path); err == nil && sum == busybox.DefaultSHA256 {
		d += ", pinned " + busybox.DefaultVersion
	}
	return d
}

func downloadSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// recordedSum is the SHA-256 that step 1 recorded for the work directory's
// BusyBox ("" if none).
func recordedSum(w state.Workdir) string {
	sum, _ := busybox.Recorded(w.Busybox())
	return sum
}

// verifiedBusybox is the BusyBox that a step runs on the host, outside any
// container: a private copy of the one step 1 verified, checked against the
// checksum recorded then as it is made. Never the root filesystem's
// bin/busybox, which a payload of steps 3–5 can replace.
func verifiedBusybox(w state.Workdir) (string, error) {
	p, err := busybox.HostCopy(w.Busybox(), w.Verified())
	if err != nil {
		return "", fmt.Errorf("%w; fetch it again with 'sudo %s' (%s)", err, of("download").Command(), of("download").Label())
	}
	return p, nil
}

// execAllowed refuses a work directory on a filesystem mounted noexec:
// nothing in it could run, BusyBox included, and every step would fail
// with a bare "permission denied". The nearest existing directory on the
// way to dir is asked, so nothing is created first.
func execAllowed(dir string) error {
	p := dir
	var st unix.Statfs_t
	for {
		err := unix.Statfs(p, &st)
		if err == nil {
			break
		}
		if parent := filepath.Dir(p); parent != p && errors.Is(err, unix.ENOENT) {
			p = parent
			continue
		}
		return nil // cannot tell: the download will say what fails
	}
	if st.Flags&unix.ST_NOEXEC == 0 {
		return nil
	}
	return fmt.Errorf("work directory %s is on a filesystem mounted noexec (%s): nothing can run from it, BusyBox included; "+
		"remount it without noexec (sudo mount -o remount,exec %s) or give a --workdir on another filesystem, e.g. --workdir %s",
		dir, mountPoint(p), mountPoint(p), state.DefaultRoot)
}

// mountPoint is the mount point of the filesystem that holds path, from
// /proc/self/mountinfo: the longest mount point that is a prefix of it.
func mountPoint(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return path
	}
	best := "/"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], "\\040", " ")
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}
