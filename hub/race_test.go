//go:build race

package hub

// raceEnabled: the race detector slows every goroutine of the test process,
// including the test's own clients, several times over.
const raceEnabled = true
