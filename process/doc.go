// Package process runs processing steps on a channel's frames and
// publishes the results to another channel: `framehub process`. It
// subscribes to the input channel in credit mode and keeps only the
// newest frame: a worker that becomes free takes the newest frame, and
// frames that arrive while every worker is busy replace each other
// (counted as skipped), so a step slower than the camera makes the
// processor skip frames, never fall behind. Each result keeps its input's
// sequence number and capture time, so frame age downstream is true
// glass-to-glass age, and carries the input's metadata merged with the
// steps' (boxes, and each step's name and time). With several workers,
// a result that finishes after a newer frame's has been published is
// dropped (counted as late): the output never goes back in time.
//
// Input metadata is not trusted: boxes are read by the page's rules
// (protocol.ParseBoxes), "steps" must be a list of names and times, other
// keys are passed on only when nested at most 32 deep, and what is left
// out is counted and logged at a bounded rate. The output's metadata is a
// JSON object within the hub's announced limit: when it does not fit, the
// input's keys, then the oldest steps, then the last boxes are left out
// (counted, and "boxes_dropped" says how many boxes).
//
// The metadata schema, the ordering (input slot, turnstiles, output slot)
// and the worker pool are pure Go; the steps, decoding and encoding need
// OpenCV and are built with cgo only.
package process
