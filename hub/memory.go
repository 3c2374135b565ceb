package hub

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The hub's frame memory is bounded by a budget, not by luck. What it
// counts: the buffers of frames being received (sized by the bytes that
// have arrived, never by what a header declares), and for every channel
// its newest frame and the one before it, which a slow subscriber may still
// be writing, until the channel's publisher starts on the next frame.
// At the budget, new channels and bigger frames are refused, while a
// publisher streaming frames of one size keeps within what its channel
// already holds. Each frame exists once: one buffer holds the WebSocket
// framing, the frame header, metadata and payload, and every subscriber,
// snapshot and MJPEG reader shares it.

// budget counts bytes against a limit. Safe for concurrent use.
type budget struct {
	max  int64 // negative: unlimited
	used atomic.Int64
}

// reserve adds n to the count unless that would pass the limit.
func (b *budget) reserve(n int64) bool {
	if b.max < 0 {
		b.used.Add(n)
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// DefaultMaxMemory is Config.MaxMemory's default: a quarter of the
// machine's memory, or half of the cgroup (container) limit when that is
// smaller, and 1 GiB when neither can be read.
func DefaultMaxMemory() int64 {
	total := physicalMemory() / 4
	if cg := cgroupMemoryLimit(); cg > 0 && (total == 0 || cg/2 < total) {
		total = cg / 2
	}
	if total <= 0 {
		return 1 << 30
	}
	return total
}

// cgroupMemoryLimit reads the cgroup v2 (or v1) memory limit of this
// process, or 0 if there is none.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan()
		f.Close()
		v, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err == nil && v > 0 && v < 1<<50 {
			return v
		}
	}
	return 0
}

// Receive buffers. A publisher's frame is read into a buffer that grows as
// bytes arrive: it starts at the declared size when that is small, else at
// firstChunk, and grows fourfold, straight to the declared size once an
// eighth of it has arrived; so a header that declares 16 MiB and a body
// that never comes costs firstChunk, not 16 MiB, and what is allocated is
// never more than eight times what arrived.
// Intermediate buffers come from pools; the last one, sized exactly, becomes
// the frame.
const (
	firstChunk = 256 << 10
	// wsRoom is the room kept in front of a frame's bytes for the
	// WebSocket frame header the hub writes there once: 2 to 10 bytes.
	wsRoom = 10
)

// chunkPools holds grow buffers of firstChunk << (2*i) bytes, up to
// maxChunk; a frame bigger than that grows straight to its exact size.
var chunkPools [4]sync.Pool

const maxChunk = firstChunk << (2 * (len(chunkPools) - 1))

func chunkClass(size int) int {
	c := 0
	for n := firstChunk; n < size && c < len(chunkPools)-1; n <<= 2 {
		c++
	}
	return c
}

func getChunk(class int) []byte {
	if b, ok := chunkPools[class].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, firstChunk<<(2*class))
}

func putChunk(b []byte) {
	if c := chunkClass(cap(b)); cap(b) == firstChunk<<(2*c) {
		chunkPools[c].Put(&b)
	}
}
