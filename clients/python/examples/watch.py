"""Watch a framehub channel: a status line each second (fps, frame age,
size, skipped frames) and, with --show, the frames in a window (q quits).

    PYTHONPATH=clients/python /usr/bin/python3 watch.py --channel cam1 [--hub URL] [--show]

A hub that needs a view token gets it from --token or $FRAMEHUB_TOKEN.
"""
import argparse
import os
import statistics
import sys
import time

import cv2

import framehub


def main():
    ap = argparse.ArgumentParser(description="Watch a framehub channel.")
    ap.add_argument("--hub", default="http://127.0.0.1:8080", help="hub address (default %(default)s)")
    ap.add_argument("--channel", default="cam1", help="channel to watch (default %(default)s)")
    ap.add_argument("--token", default=os.environ.get("FRAMEHUB_TOKEN"), help="view token (default $FRAMEHUB_TOKEN)")
    ap.add_argument("--window", type=int, default=1, help="frames in flight, 1 to 8 (default %(default)s)")
    ap.add_argument("--count", type=int, default=0, help="stop after this many frames (default: never)")
    ap.add_argument("--show", action="store_true", help="show the frames in a window")
    args = ap.parse_args()

    with framehub.Subscriber(args.hub, args.channel, token=args.token, window=args.window) as sub:
        start, frames, ages = time.monotonic(), 0, []
        for f in sub:
            frames += 1
            ages.append(f.age)
            if args.show:
                cv2.imshow(args.channel, f.image)
                if cv2.waitKey(1) in (ord("q"), 27):
                    break
            now = time.monotonic()
            if now - start >= 1:
                print(f"{args.channel}  {frames / (now - start):5.1f} fps  age {statistics.median(ages) * 1000:6.1f} ms  "
                      f"{f.width}x{f.height} {f.codec} {f.size / 1000:.0f} kB  skipped {sub.skipped}  "
                      f"reconnects {sub.reconnects}", flush=True)
                start, frames, ages = now, 0, []
            if args.count and sub.frames >= args.count:
                break


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except framehub.RefusedError as e:
        sys.exit(f"watch: {e}")
