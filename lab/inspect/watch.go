package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/underhood/underhood/lab/cgroup"
	"github.com/underhood/underhood/lab/proc"
	"github.com/underhood/underhood/lab/ui"
)

// Options say what Run shows, and how.
type Options struct {
	PID   int           // the target's host PID; 0 for the host overview
	JSON  bool          // JSON documents instead of tables
	Watch time.Duration // refresh interval; 0 shows one snapshot
	// Sections picks the compact view's sections (see Sections); nil is
	// the whole report, except in a watch on a terminal, which shows a
	// compact view of the cgroup, processes and namespaces.
	Sections []string
}

// Exit is the last document of a watch whose target ended.
type Exit struct {
	Event          string    `json:"event"` // "target_exited"
	Time           time.Time `json:"time"`
	PID            int       `json:"pid"`
	OOMKillsBefore int64     `json:"oom_kills_before"` // -1: unknown
	OOMKillsAfter  int64     `json:"oom_kills_after"`
	OOMKillsFrom   string    `json:"oom_kills_from"` // "cgroup", "kernel_log", "": unknown
	PeakBytes      int64     `json:"peak_bytes"`     // -1: unknown
}

// A watch on a terminal redraws in place: the first frame clears the
// screen, each later one moves the cursor home and overwrites, clearing
// what is left of each line and, at the end, of the screen. No alternate
// screen: after Ctrl-C the last frame stays, with the prompt under it.
const (
	clearScreen = "\x1b[H\x1b[2J"
	cursorHome  = "\x1b[H"
	clearLine   = "\x1b[K"
	clearBelow  = "\x1b[J"
)

// Run shows one snapshot, or with Watch one every interval: redrawn in place
// on a terminal, one after another (each under a timestamp) when piped, one
// JSON document per line with JSON. A watch ends without error when ctx is
// cancelled (Ctrl-C) or when the target exits.
func Run(ctx context.Context, o *ui.IO, src Sources, opt Options) error {
	take := func() (any, error) {
		if opt.PID == 0 {
			return HostOverview(src)
		}
		return Inspect(src, opt.PID)
	}
	if opt.Watch <= 0 {
		v, err := take()
		if err != nil {
			return err
		}
		if opt.JSON {
			enc := json.NewEncoder(o.Out)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(v)
		}
		// A container's report is about 90 lines: paged on a terminal.
		o.Page(func(o *ui.IO) { render(o, v, opt.Sections, 0) })
		return nil
	}
	return watch(ctx, o, src, opt, take)
}

// render writes a report or an overview: the whole of it, or the compact
// view of the sections named, fitted within height lines (0: no limit).
func render(o *ui.IO, v any, sections []string, height int) {
	switch v := v.(type) {
	case *Report:
		if len(sections) == 0 || contains(sections, SectionFull) {
			Write(o, v)
			return
		}
		if height <= 0 {
			height = 1 << 30
		}
		WriteCompact(o, v, sections, height)
	case *Overview:
		WriteOverview(o, v)
	}
}

func watch(ctx context.Context, o *ui.IO, src Sources, opt Options, take func() (any, error)) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	restore := func() {}
	if o.InTTY && o.OutTTY && !opt.JSON {
		restore = quitOnQ(o.In, cancel)
		defer func() { restore() }()
	}
	stop := func() error {
		if parent.Err() != nil {
			// Ctrl-C: the terminal sends the signal, then echoes ^C if
			// ECHO is on by then. With the terminal given back first and
			// a moment's wait, that echo comes before the line's end,
			// never after it where the prompt would follow it.
			restore()
			restore = func() {}
			time.Sleep(20 * time.Millisecond)
		}
		return stopped(o, opt)
	}
	var first, last *Report
	var exited <-chan counters
	end := counters{kills: -1, peak: -1}
	var klog *kernelLog
	if opt.PID != 0 {
		klog = openKernelLog(src.KernelLog) // before the first snapshot: no kill is missed
		defer klog.close()
	}
	tick := time.NewTicker(opt.Watch)
	defer tick.Stop()
loop:
	for n := 0; ; n++ {
		v, err := take()
		var np *NoProcessError
		if errors.As(err, &np) && first != nil {
			break
		}
		if err != nil {
			return err
		}
		if r, ok := v.(*Report); ok {
			switch {
			case first == nil:
				first = r
				exited = watchExit(ctx, src, r)
			case r.Target.StartTime != first.Target.StartTime:
				break loop // the PID now names another process
			}
			if !r.Exited {
				last = r // an exited one's cgroup may already be gone
			}
		}
		if err := emit(o, opt, v, n); err != nil {
			return err
		}
		if last != nil && last != v {
			break // it exited during this snapshot
		}
		if ctx.Err() != nil {
			return stop()
		}
		select {
		case <-ctx.Done():
			return stop()
		case end = <-exited:
			return exitReport(o, src, opt, first, last, end, klog)
		case <-tick.C:
		}
	}
	if exited != nil {
		// A snapshot saw the exit first; the pidfd watcher, woken at the
		// same moment, has the counters read in time.
		select {
		case end = <-exited:
		case <-time.After(250 * time.Millisecond):
		}
	}
	return exitReport(o, src, opt, first, last, end, klog)
}

func emit(o *ui.IO, opt Options, v any, n int) error {
	if opt.JSON {
		return encodeLine(o, v)
	}
	var buf bytes.Buffer
	bo := *o
	bo.Out = &buf
	var at time.Time
	switch v := v.(type) {
	case *Report:
		at = v.Time
	case *Overview:
		at = v.Time
	}
	stamp := at.Format("2006-01-02 15:04:05.000")
	if !o.OutTTY {
		if n > 0 {
			buf.WriteString("\n")
		}
		fmt.Fprintf(&buf, "=== %s ===\n", stamp)
		render(&bo, v, opt.Sections, 0)
		_, err := o.Out.Write(buf.Bytes())
		return err
	}
	sections := opt.Sections
	if len(sections) == 0 {
		sections = watchSections
	}
	height := o.Height
	if height <= 0 {
		height = defaultHeight
	}
	fmt.Fprintln(&buf, o.Faint(fmt.Sprintf("every %v, %s; q or Ctrl-C stops", opt.Watch, stamp)))
	render(&bo, v, sections, height)
	frame := strings.Join(screenful(o, buf.String(), height), clearLine+"\n") + clearLine + "\n"
	start := cursorHome
	if n == 0 {
		start = clearScreen
	}
	_, err := io.WriteString(o.Out, start+frame+clearBelow)
	return err
}

// screenful cuts a frame to what one screen shows: lines cut to the
// width, and at most height-1 of them (the cursor keeps the last), the last
// saying how many more there are. The compact view fits already; the host
// overview and --section full are cut here.
func screenful(o *ui.IO, frame string, height int) []string {
	lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
	width := o.Width
	if width <= 0 {
		width = defaultWidth
	}
	if len(lines) > height-1 {
		more := len(lines) - (height - 2)
		lines = append(lines[:height-2:height-2], o.Faint(fmt.Sprintf("… %d more lines: a taller terminal shows them, or pipe it (| less)", more)))
	}
	for i, l := range lines {
		if ui.Width(l) > width {
			lines[i] = ui.Cut(l, width)
		}
	}
	return lines
}

// exitReport is the last word of a watch: the target is gone, and whether
// its cgroup's OOM killer was the reason. The counter is read again at once,
// before the container's runtime removes the cgroup; the last snapshot's
// value stands in when it is already gone.
func exitReport(o *ui.IO, src Sources, opt Options, first, last *Report, seen counters, klog *kernelLog) error {
	e := Exit{Event: "target_exited", Time: src.now(), PID: first.Target.PID, OOMKillsBefore: -1, OOMKillsAfter: -1, PeakBytes: -1}
	if first.Cgroup != nil {
		e.OOMKillsBefore = first.Cgroup.OOMKills
	}
	if last == nil {
		last = first
	}
	if last.Cgroup != nil {
		now := readCounters(last.Cgroup)
		e.OOMKillsAfter = max(last.Cgroup.OOMKills, seen.kills, now.kills)
		e.PeakBytes = max(last.Cgroup.PeakBytes, seen.peak, now.peak)
		if e.OOMKillsAfter >= 0 {
			e.OOMKillsFrom = "cgroup"
		}
		if seen.kills < 0 && now.kills < 0 && e.OOMKillsBefore >= 0 {
			// The cgroup went with its last process: ask the kernel log.
			if n := int64(klog.oomKills(last.Cgroup.HostPath)); e.OOMKillsBefore+n > e.OOMKillsAfter {
				e.OOMKillsAfter, e.OOMKillsFrom = e.OOMKillsBefore+n, "kernel_log"
			}
		}
	}
	if opt.JSON {
		return encodeLine(o, e)
	}
	o.Say()
	o.Printf("target exited: %s (host PID %d) is gone.\n", first.Target.Label(), e.PID)
	if e.OOMKillsBefore >= 0 && e.OOMKillsAfter > e.OOMKillsBefore {
		o.Printf("%s oom_kill went from %d to %d: the kernel's OOM killer ended %s in its cgroup.\n",
			o.Red("OOM kill:"), e.OOMKillsBefore, e.OOMKillsAfter, plural(int(e.OOMKillsAfter-e.OOMKillsBefore), "process", "processes"))
		if e.OOMKillsFrom == "kernel_log" {
			o.Say("(The cgroup was removed with its last process, before its counter could be read again; the kernel log has each kill.)")
		}
	}
	if e.PeakBytes >= 0 && last.Cgroup != nil {
		limit := "no limit"
		if last.Cgroup.LimitBytes >= 0 {
			limit = fmt.Sprintf("a limit of %s", cgroup.FormatSize(last.Cgroup.LimitBytes))
		}
		o.Printf("Its cgroup's peak memory use: %d bytes (%s), against %s.\n", e.PeakBytes, cgroup.FormatSize(e.PeakBytes), limit)
	}
	return nil
}

// stopped ends a watch stopped by Ctrl-C: on a terminal, the shell's
// prompt then starts on a line of its own, not after the ^C.
func stopped(o *ui.IO, opt Options) error {
	if o.OutTTY && !opt.JSON {
		o.Say()
	}
	return nil
}

// counters are a cgroup's OOM-kill count and peak use; -1 where unknown.
type counters struct{ kills, peak int64 }

func readCounters(c *Cgroup) counters {
	k, p := oomNow(c)
	return counters{kills: k, peak: p}
}

// watchExit sends the target's cgroup counters the moment the target (still
// the process r names) exits. It waits on a pidfd, which is ready as soon
// as the process is a zombie, and reads the counters at once: before the
// container's runtime, woken at the same moment, removes the cgroup. nil
// (never ready) where there is no pidfd or the procfs is not the host's;
// the snapshots notice the exit then.
func watchExit(ctx context.Context, src Sources, r *Report) <-chan counters {
	if src.Proc != proc.Host {
		return nil
	}
	pid := r.Target.PID
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	ch := make(chan counters, 1)
	if !src.Proc.Same(pid, r.Target.StartTime) {
		unix.Close(fd)
		ch <- counters{kills: -1, peak: -1}
		return ch
	}
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for ctx.Err() == nil {
			n, err := unix.Poll(fds, 50)
			if err == nil && n > 0 {
				c := counters{kills: -1, peak: -1}
				if r.Cgroup != nil {
					c = readCounters(r.Cgroup)
				}
				ch <- c
				return
			}
		}
	}()
	return ch
}

// encodeLine writes v as one line of JSON.
func encodeLine(o *ui.IO, v any) error {
	enc := json.NewEncoder(o.Out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
