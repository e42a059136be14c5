package cgroup

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

const (
	// DefaultLimit is the article's 7 MB: what docker run --memory=7m sets.
	DefaultLimit = 7340032
	// NoLimit makes a cgroup without a memory limit: one that only holds a
	// run's processes, so that all of them can be found and ended.
	NoLimit = -1
	// MinLimit is the smallest limit ParseSize accepts (4 MiB): below it the
	// container's first process (BusyBox sh) may be killed before it starts,
	// which teaches nothing.
	MinLimit = 4 << 20
	// MaxLimit is the largest limit ParseSize accepts (1 TiB): far above
	// any lab machine's memory. Larger values limit nothing (near 8 EiB the
	// kernel itself reads them as "max"), so they are refused, not taken
	// as a limit that is none.
	MaxLimit = 1 << 40
)

const sizeAccepted = "give bytes or a number with K, M, G or T (1024-based; i and B optional), e.g. 7340032, 7M, 7MiB or 1.5G"

// ParseSize reads a memory size as Docker's --memory does: bytes, or a
// number with K, M, G or T, 1024-based, case-insensitive, optionally followed by
// i and/or B ("7m", "7M", "7Mi", "7MB", "7MiB" are all 7340032), with at most
// one decimal point ("1.5G"). Sizes below MinLimit are refused.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("memory %q: empty; %s", s, sizeAccepted)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimPrefix(t[i:], " "))
	if strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("memory %q: more than one decimal point; %s", s, sizeAccepted)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" || strings.HasSuffix(num, ".") {
		return 0, fmt.Errorf("memory %q: not a size; %s", s, sizeAccepted)
	}
	var mult int64
	switch strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i") {
	case "":
		mult = 1
		if strings.HasPrefix(unit, "i") || unit == "ib" {
			mult = 0 // "7i", "7iB": i needs a unit before it
		}
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	case "t":
		mult = 1 << 40
	}
	if mult == 0 {
		return 0, fmt.Errorf("memory %q: not a size; %s", s, sizeAccepted)
	}

	// Exact arithmetic: whole.frac × mult, rounded down to a byte.
	n, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return 0, fmt.Errorf("memory %q: not a size; %s", s, sizeAccepted)
	}
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !n.IsInt64() || n.Int64() > MaxLimit {
		return 0, fmt.Errorf("memory %q: too large; the most is 1T (1 TiB): a larger limit limits nothing on this machine", s)
	}
	if v := n.Int64(); v >= MinLimit {
		return v, nil
	}
	hint := ""
	if strings.TrimRight(s, "0123456789") == "" {
		hint = fmt.Sprintf(" (a number without a unit is bytes: did you mean %sM?)", s)
	}
	return 0, fmt.Errorf("memory %q: below the floor of 4MiB, the least the container's first process needs to start; give at least 4M%s", s, hint)
}

// FormatSize renders bytes in binary units: "512 B", "7.0 MiB", "1.5 GiB".
func FormatSize(n int64) string {
	if n < 0 {
		if n == math.MinInt64 {
			return "-8.0 EiB"
		}
		return "-" + FormatSize(-n)
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n)/1024, 0
	for u < len(units)-1 && math.Round(v*10)/10 >= 1024 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
