"""Publish a camera or a video file to a framehub channel.

    PYTHONPATH=clients/python /usr/bin/python3 publish_camera.py [SOURCE [CHANNEL [HUB]]]

SOURCE is a camera index (default 0) or a video file, which plays at its own
frame rate; CHANNEL defaults to cam1, HUB to http://127.0.0.1:8080. A hub
that needs a publish token gets it from $FRAMEHUB_TOKEN. Ctrl-C stops.
"""
import os, sys, time
import cv2, framehub

source, channel, hub = sys.argv[1:4] + ["0", "cam1", "http://127.0.0.1:8080"][len(sys.argv[1:4]):]
cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
pause = 0 if source.isdigit() else 1 / (cap.get(cv2.CAP_PROP_FPS) or 25)  # a camera paces itself
try:
    with framehub.Publisher(hub, channel, token=os.environ.get("FRAMEHUB_TOKEN")) as pub:
        while (got := cap.read())[0]:
            pub.send(got[1])  # JPEG-encoded here; never waits for the network
            time.sleep(pause)
except KeyboardInterrupt:
    pass
