package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseByteSize reads a byte size: a number of bytes, or a number with a
// unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB in powers of 1000), between
// least and 1 PiB.
func parseByteSize(s string, least int64) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult, num := 1.0, s
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			mult, num = u.mult, strings.TrimSpace(n)
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v*mult >= float64(least)) || v*mult > 1<<50 {
		return 0, fmt.Errorf("want a size of at least %d bytes, such as 512MiB or 50GiB", least)
	}
	return int64(v * mult), nil
}

// parseLongDuration reads a duration as Go writes them (90m, 12h30m), with
// days too: 7d, 1d12h.
func parseLongDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days := 0.0
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		var err error
		if days, err = strconv.ParseFloat(s[:i], 64); err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("%q: want a duration such as 7d, 36h or 1d12h", s)
		}
		s = s[i+1:]
	}
	d := time.Duration(0)
	if s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 7d, 36h or 1d12h", s)
		}
	}
	return d + time.Duration(days*24*float64(time.Hour)), nil
}
