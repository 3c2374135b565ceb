//go:build !cgo

package subscriber

// boxBurner needs OpenCV; Record refuses DrawBoxes in a build without it
// before one is made.
type boxBurner struct{}

func newBoxBurner(uint64) (*boxBurner, error) { return nil, errDrawBoxes }

func (*boxBurner) jpeg(*Frame) ([]byte, error) { return nil, errDrawBoxes }

func (*boxBurner) close() {}
