"""Helpers for tests that drive a real framehub hub and Go clients.

The framehub binary comes from $FRAMEHUB_BIN (the Go test in clients/python
builds it once and sets it), else it is built here once per run with `go
build`. Every process a test starts is stopped by its PID in a cleanup.
Everything listens on 127.0.0.1 only, and waits poll until a deadline.
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(CLIENT_DIR))
sys.path.insert(0, CLIENT_DIR)

import framehub  # noqa: E402  (after the path is set)

GOLDEN = os.path.join(REPO, "protocol", "testdata", "golden")

_bin = None
_tmp = tempfile.mkdtemp(prefix="framehub-pytest-")
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)


def tempdir(prefix):
    """Returns a new directory, removed when the suite ends."""
    return tempfile.mkdtemp(prefix=prefix, dir=_tmp)


def framehub_bin():
    """Returns the path of the framehub binary, building it on first use."""
    global _bin
    if _bin is None:
        _bin = os.environ.get("FRAMEHUB_BIN")
        if not _bin:
            go = shutil.which("go")
            if go is None:
                raise unittest.SkipTest("no framehub binary: set FRAMEHUB_BIN or install Go")
            _bin = os.path.join(_tmp, "framehub")
            subprocess.run([go, "build", "-o", _bin, "./cmd/framehub"], cwd=REPO, check=True, timeout=300)
    return _bin


def missing(what):
    """Skips a test that needs something not installed; in CI, where
    scripts/setup.sh installs everything, fails it instead."""
    if os.environ.get("CI"):
        raise AssertionError(f"{what} is not installed (scripts/setup.sh installs it)")
    raise unittest.SkipTest(f"{what} is not installed; run scripts/setup.sh")


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        missing(name)
    return path


def wait_until(pred, timeout, what):
    """Polls pred until it returns a true value, which it returns; fails
    with what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Proc:
    """A child process whose stdout and stderr go to files the test can read."""

    def __init__(self, args, env=None):
        fd, self.out_path = tempfile.mkstemp(dir=_tmp, suffix=".out")
        os.close(fd)
        fd, self.err_path = tempfile.mkstemp(dir=_tmp, suffix=".err")
        os.close(fd)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, **(env or {})))
        self.pid = self.p.pid

    def stdout(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        return self.p.wait(timeout)

    def stop(self, timeout=5.0):
        """Asks the process to stop (SIGTERM), then kills it by PID."""
        if self.p.poll() is not None:
            return self.p.returncode
        try:
            if self.p.poll() is None:
                os.kill(self.pid, signal.SIGCONT)  # in case a test stopped it
            self.p.terminate()
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait(timeout)


_LISTEN = re.compile(r'msg="hub listening" addr=(127\.0\.0\.1:\d+)')


class Hub:
    """A framehub hub process on 127.0.0.1."""

    def __init__(self, *args, listen="127.0.0.1:0"):
        self.args = list(args)
        self.proc = Proc([framehub_bin(), "hub", "--listen", listen, *self.args])
        m = wait_until(lambda: _LISTEN.search(self.proc.stderr()) or self.proc.p.poll() is not None,
                       10, "the hub to listen")
        if not isinstance(m, re.Match):
            raise AssertionError(f"hub exited: {self.proc.stderr()}")
        self.addr = m.group(1)
        self.url = "http://" + self.addr

    def restart(self):
        """Stops the hub and starts a new one on the same address."""
        self.proc.stop()
        self.__init__(*self.args, listen=self.addr)

    def stop(self):
        self.proc.stop()

    def api(self, path, token=None):
        req = urllib.request.Request(self.url + path)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    def stats(self):
        return self.api("/api/stats")


def start_hub(test, *args):
    """Starts a hub that stops when test (a TestCase or its class) is cleaned up."""
    h = Hub(*args)
    add_cleanup(test, h.stop)
    return h


def add_cleanup(test, fn, *args):
    if isinstance(test, type):
        test.addClassCleanup(fn, *args)
    else:
        test.addCleanup(fn, *args)


def go_publisher(test, hub, channel, *args, source="test:1280x720", fps=30):
    """Starts `framehub publish` on the built-in test pattern."""
    p = Proc([framehub_bin(), "publish", "--hub", hub.url, "--channel", channel, "--source", source,
              "--fps", str(fps), "--quiet", *args])
    add_cleanup(test, p.stop)
    return p


def run_python(test, script, *args, env=None):
    """Starts one of the examples with Debian's python3 and this module on its path."""
    e = {"PYTHONPATH": CLIENT_DIR, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    e.update(env or {})
    p = Proc([sys.executable, os.path.join(CLIENT_DIR, "examples", script), *args], env=e)
    add_cleanup(test, p.stop)
    return p


def pattern(width, height, n):
    """A BGR test picture that changes with n: a gradient, a moving bar and
    a flat patch whose gray level is n mod 200 (readable after JPEG)."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    x = (n * 8) % max(width - 16, 1)
    img[:, x:x + 16] = (0, 0, 255)
    img[: height // 4, : width // 4] = n % 200
    return img


def patch_level(img):
    """Reads back the gray level of pattern()'s flat patch."""
    h, w = img.shape[:2]
    return int(round(float(img[h // 16: h // 8, w // 16: w // 8].mean())))


class Pump:
    """Sends pattern frames from a publisher at fps in a thread until stopped."""

    def __init__(self, test, pub, width=640, height=360, fps=30.0, frames=None):
        import threading
        self.pub, self.stop_evt = pub, threading.Event()
        self.frames = frames or [pattern(width, height, n) for n in range(8)]
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fps,), daemon=True)
        self.thread.start()
        add_cleanup(test, self.stop)

    def _run(self, fps):
        n = 0
        next_t = time.monotonic()
        try:
            while not self.stop_evt.is_set():
                self.pub.send(self.frames[n % len(self.frames)], meta={"n": n})
                n += 1
                next_t += 1 / fps
                self.stop_evt.wait(max(0.0, next_t - time.monotonic()))
        except framehub.ClosedError:
            pass  # the test closed the publisher first
        except Exception as e:  # stop() raises it
            self.error = e

    def stop(self):
        self.stop_evt.set()
        self.thread.join(5)
        if self.error is not None:
            raise AssertionError(f"send failed: {self.error!r}")
