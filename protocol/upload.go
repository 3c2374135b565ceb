package protocol

// Publishing over plain HTTP, for sources that are not WebSocket clients
// (ffmpeg, GStreamer, curl, cameras): a POST of JPEGs to a channel's
// MJPEG or snapshot URL. The hub reads the body with MJPEGReader, makes
// each JPEG a frame (its size from the JPEG's SOF, its sequence number
// counted by the hub, its capture time from the part's X-Capture-Time or
// the arrival of its last byte) and answers when the upload ends.
const (
	// UploadStream is the file name of a channel's MJPEG URL: POST
	// /channels/{channel}/stream.mjpeg uploads any number of JPEGs, bare
	// or as multipart parts, for as long as the request lasts.
	UploadStream = "stream.mjpeg"
	// UploadSnapshot is the file name of a channel's snapshot URL: POST
	// /channels/{channel}/snapshot.jpg uploads one JPEG.
	UploadSnapshot = "snapshot.jpg"
)

// UploadResult is the hub's JSON answer to an upload that ended well.
type UploadResult struct {
	Channel string `json:"channel"`
	Frames  uint64 `json:"frames"`  // published
	Dropped uint64 `json:"dropped"` // over the hub's frame-rate cap, not relayed
	Seq     uint64 `json:"seq"`     // the last frame's sequence number
	Width   uint32 `json:"width"`   // of the last frame
	Height  uint32 `json:"height"`
	Bytes   uint64 `json:"bytes"` // of JPEG published
}
