"""Detect faces on one channel and publish the frames, with the faces as
boxes in their metadata, to another: the Python twin of `framehub process`.

    PYTHONPATH=clients/python /usr/bin/python3 detect_faces.py --source-channel cam1 --channel cam1-faces

The output frames carry {"boxes": [{"x", "y", "w", "h", "label": "face",
"score"}]}, which the hub's web page draws over the picture, and keep the
input's capture time, so their age includes the detection. Detection runs on
the newest frame only: a camera faster than the detector has frames skipped,
never queued. Tokens come from --token or $FRAMEHUB_TOKEN.
"""
import argparse
import os
import sys
import time

import cv2

import framehub

CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"  # Debian's opencv-data


def faces(cascade, image, max_width):
    """Returns the faces in a BGR or gray image as metadata boxes, in the image's coordinates."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, max_width / gray.shape[1])
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rects, _, weights = cascade.detectMultiScale3(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
                                                  minSize=(24, 24), outputRejectLevels=True)
    return [{"x": round(x / scale), "y": round(y / scale), "w": round(w / scale), "h": round(h / scale),
             "label": "face", "score": round(float(s), 2)} for (x, y, w, h), s in zip(rects, weights)]


def main():
    ap = argparse.ArgumentParser(description="Detect faces on one framehub channel, publish them to another.")
    ap.add_argument("--hub", default="http://127.0.0.1:8080", help="hub address (default %(default)s)")
    ap.add_argument("--source-channel", required=True, help="channel to read")
    ap.add_argument("--channel", required=True, help="channel to publish the frames with their boxes to")
    ap.add_argument("--token", default=os.environ.get("FRAMEHUB_TOKEN"), help="token with view and publish rights")
    ap.add_argument("--cascade", default=CASCADE, help="Haar cascade file (default: frontal faces)")
    ap.add_argument("--max-width", type=int, default=640, help="detect on frames scaled down to this width")
    args = ap.parse_args()
    cascade = cv2.CascadeClassifier(args.cascade)
    if cascade.empty():
        sys.exit(f"detect_faces: cannot load {args.cascade} (Debian: apt install opencv-data)")

    with framehub.Subscriber(args.hub, args.source_channel, token=args.token) as sub, \
            framehub.Publisher(args.hub, args.channel, token=args.token) as pub:
        start, frames, found, busy = time.monotonic(), 0, 0, 0.0
        for f in sub:
            if f.dtype != "uint8":
                continue  # a raw depth or float frame: nothing to detect faces on
            t = time.monotonic()
            boxes = faces(cascade, f.image, args.max_width)
            busy += time.monotonic() - t
            meta = dict(f.meta or {}, boxes=boxes)
            # A JPEG goes out as it came (no re-encoding); its capture time stays.
            pub.send(f.jpeg if f.jpeg is not None else f.image, meta=meta, captured=f.captured)
            frames, found = frames + 1, found + len(boxes)
            now = time.monotonic()
            if now - start >= 1:
                print(f"{args.source_channel} -> {args.channel}  {frames / (now - start):5.1f} fps  "
                      f"{found / frames:.1f} faces/frame  detect {busy / frames * 1000:.0f} ms  "
                      f"age {f.age * 1000:.0f} ms  skipped {sub.skipped}", flush=True)
                start, frames, found, busy = now, 0, 0, 0.0


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except framehub.RefusedError as e:
        sys.exit(f"detect_faces: {e}")
