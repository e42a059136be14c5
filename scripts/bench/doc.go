package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// The part of docs/performance.md that a bench run writes, between these
// two lines; the rest of the page is prose.
const (
	docBegin = "<!-- bench:begin: written by make bench (scripts/bench); edit outside it -->"
	docEnd   = "<!-- bench:end -->"
)

// target is one of issue 16's targets: a over b at most limit.
type target struct {
	what, a, b string
	limit      float64
}

var targets = []target{
	{"underhood's `--version` ≤ 1.3× an empty Go program", "underhood --version", "empty Go program", 1.3},
	{"the container's first process ≤ 1.3× an empty Go program", "underhood-init (the child)", "empty Go program", 1.3},
	{"`underhood unshare` ≤ 1.8× unshare+chroot", "underhood unshare", "unshare+chroot", 1.8},
	{"`underhood run` ≤ 0.5× `runc run`", "underhood run", "runc run", 0.5},
	{"`underhood run` ≤ 0.8× `crun run`", "underhood run", "crun run", 0.8},
	{"`inspect` (host) ≤ 1.0× `lsns -J`", "underhood inspect (host)", "lsns", 1.0},
	{"`inspect NAME` ≤ 1.0× `ps -e`", "underhood inspect NAME", "ps -e", 1.0},
}

// targetTable says for each target the ratio of this run and by how many
// milliseconds it is missed, or that it is met.
func targetTable(all []*bench, left map[string]string) string {
	med := map[string]float64{}
	for _, b := range all {
		med[b.Name] = median(b, func(s sample) float64 { return float64(s.WallNS) }) / 1e6
	}
	var rows [][]string
	for _, t := range targets {
		a, okA := med[t.a]
		b, okB := med[t.b]
		if !okA || !okB || b == 0 {
			why := left[t.b]
			if why == "" {
				why = "not measured in this run"
			}
			rows = append(rows, []string{t.what, "—", why})
			continue
		}
		r := a / b
		verdict := "met"
		if r > t.limit {
			verdict = fmt.Sprintf("missed by %.1f ms (%.1f against %.1f allowed)", a-t.limit*b, a, t.limit*b)
		}
		rows = append(rows, []string{t.what, fmt.Sprintf("%.2f×", r), verdict})
	}
	// Peak RSS: ru_maxrss of a child counts what it had before its exec,
	// the bench's own forked copy, so the floor is the bench's size.
	floor, peak, who := 0.0, 0.0, ""
	for _, b := range all {
		rss := median(b, func(s sample) float64 { return float64(s.MaxRSSK) }) / 1024
		if b.Name == "empty Go program" {
			floor = rss
		}
		if strings.HasPrefix(b.Name, "underhood") && rss > peak {
			peak, who = rss, b.Name
		}
	}
	verdict := "met"
	if peak > 10 {
		verdict = fmt.Sprintf("missed by %.1f MiB", peak-10)
	}
	rows = append(rows, []string{"peak RSS of any underhood process ≤ 10 MiB",
		fmt.Sprintf("%.1f MiB", peak), fmt.Sprintf("%s (%s; the floor every process shows here is %.1f MiB)", verdict, who, floor)})
	// By hand: the verdicts read left to right.
	var out strings.Builder
	out.WriteString("| target | this run | |\n|:---|---:|:---|\n")
	for _, r := range rows {
		out.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return out.String()
}

// writeDoc puts the tables of this run between docBegin and docEnd in the
// page at path; the page must have both lines.
func writeDoc(path, section string) error {
	page, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(page, []byte(docBegin)), bytes.Index(page, []byte(docEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q … %q lines to write the figures between", path, docBegin, docEnd)
	}
	var b bytes.Buffer
	b.Write(page[:i+len(docBegin)])
	b.WriteString("\n" + section + "\n")
	b.Write(page[j:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
