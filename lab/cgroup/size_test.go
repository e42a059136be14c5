package cgroup

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"7340032", 7340032},
		{"7m", 7340032},
		{"7M", 7340032},
		{"7Mi", 7340032},
		{"7MB", 7340032},
		{"7MiB", 7340032},
		{"7mib", 7340032},
		{"7 M", 7340032},
		{" 7M\n", 7340032},
		{"7340032B", 7340032},
		{"4M", MinLimit},
		{"4096K", MinLimit},
		{"4194304", MinLimit},
		{"1.5G", 1610612736},
		{"1.5GiB", 1610612736},
		{"0.5G", 512 << 20},
		{"7.5M", 7864320},
		{"7.0000001M", 7340032}, // rounded down to a byte
		{"1024G", 1 << 40},
		{"1T", 1 << 40},
		{"1TiB", 1 << 40},
		{"0.5t", 1 << 39},
	}
	for _, tc := range good {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}

	bad := []struct{ in, want string }{
		{"", `memory "": empty; give bytes or a number with K, M, G or T`},
		{"   ", `memory "   ": empty;`},
		{"abc", `memory "abc": not a size; give bytes`},
		{"-1", `memory "-1": not a size;`},
		{"+7M", `memory "+7M": not a size;`},
		{"0", `memory "0": below the floor of 4MiB, the least the container's first process needs to start; give at least 4M`},
		{"1M", `memory "1M": below the floor of 4MiB`},
		{"4194303", `memory "4194303": below the floor of 4MiB`},
		{"1.5", `memory "1.5": below the floor`},
		{"1.5.5M", `memory "1.5.5M": more than one decimal point;`},
		{".5G", `memory ".5G": not a size;`},
		{"5.G", `memory "5.G": not a size;`},
		{"7T", `memory "7T": too large; the most is 1T`},
		{"7P", `memory "7P": not a size;`},
		{"7MM", `memory "7MM": not a size;`},
		{"7iB", `memory "7iB": not a size;`},
		{"7i", `memory "7i": not a size;`},
		{"7BiM", `memory "7BiM": not a size;`},
		{"7  M", `memory "7  M": not a size;`},
		{"8589934592G", `memory "8589934592G": too large; the most is 1T (1 TiB)`},
		{"1025G", `memory "1025G": too large; the most is 1T (1 TiB)`},
		{"8E", `memory "8E": not a size`},
		{"9223372036854775807", `memory "9223372036854775807": too large; the most is 1T`},
		{"99999999999999999999", `memory "99999999999999999999": too large;`},
	}
	for _, tc := range bad {
		got, err := ParseSize(tc.in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", tc.in, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseSize(%q) error:\n got %q\nwant prefix %q, one line", tc.in, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{512, "512 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{DefaultLimit, "7.0 MiB"},
		{7864320, "7.5 MiB"},
		{1<<20 - 1, "1.0 MiB"}, // not "1024.0 KiB"
		{1610612736, "1.5 GiB"},
		{9223372036854771712, "8.0 EiB"},
		{-2048, "-2.0 KiB"},
	} {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
