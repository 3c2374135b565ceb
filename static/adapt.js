// framehub adaptive rendition choice: which of a channel's renditions a
// player should draw, decided from what the player measures. Pure logic:
// no DOM, no timers, no network. The player feeds it its timing and the
// channel's renditions and asks it, twice a second, what to do.
//
// What tells it the player cannot keep up: frames drawn per second well
// under the channel's own rate (from the frames' sequence numbers and
// capture times), for a second. Why: each arrival's time on the wire once
// the hub could send it (Player.arrivalTiming: from the acknowledgement
// that gave the hub its credit, or the previous arrival, to this one) is
// the link's share; the decode time and the wait for the next animation
// frame are the page's. When the link is the bottleneck the hub always
// has a newer frame waiting (frames are skipped between two arrivals), so
// those arrivals measure the link: bytes ÷ time on the wire. The step
// down goes to the largest rendition whose frames, at the channel's rate,
// fit that with some room; a page that decodes too slowly steps down one.
//
// Stepping back up needs proof of room, and the stream alone cannot give
// it: when the current rendition fits, the hub waits for the publisher's
// next frame, so the time from acknowledgement to arrival is mostly that
// wait, locked to the camera's rhythm, and says nothing about how fast
// the link could go. So after holding steady a while, the adapter asks
// the player for a probe: one timed download of the larger rendition's
// newest frame (its snapshot), alongside the stream. While it lasted, the
// link carried the probe's bytes and the stream's frames that arrived
// meanwhile: their sum over its duration is what the link can at least
// carry (all of it, when the probe kept it busy). The step up happens
// when that covers the larger rendition's frames at the channel's rate
// with headroom, and the page would decode them in well under a frame
// interval (the current decode time, scaled by area); it goes to the
// widest rendition the probe shows that for, which may be more than one
// step. A step up that has to be undone within STAY_MS doubles the
// time held before the next try (up to MAX_HOLD_MS): hysteresis in
// thresholds (down under DOWN_RATIO of the channel's rate, up only at
// UP_RATIO and with HEADROOM) and in time, so it never oscillates.
'use strict';
(function (root) {
  const FH = root.FH || (root.FH = {});

  const TICK_MS = 500; // how often the player asks
  const WINDOW_MS = 2000; // the measurements a decision looks at
  const MIN_SPAN_MS = 1000; // of measurements of a rendition before judging it
  const SETTLE_MS = 750; // after a switch, frames of the new rendition before they count
  const SWITCH_WAIT_MS = 3000; // a switch the hub has not honoured by then is given up
  const DOWN_RATIO = 0.75; // drawing under this share of the channel's rate: not keeping up
  const UP_RATIO = 0.9; // drawing at least this share: keeping up
  const BAD_TICKS = 2; // consecutive ticks not keeping up before a step down
  const FIT_ROOM = 1.2; // a step down goes where the frames need at most 1/FIT_ROOM of the link
  const HEADROOM = 1.4; // a step up needs the probe to show this much more than the frames need
  const DECODE_SHARE = 0.75; // a step up needs the next size to decode in this share of a frame interval
  const HOLD_MS = 3000; // keeping up this long before a step up is tried
  const MAX_HOLD_MS = 48000;
  const PROBE_EVERY_MS = 2000;
  const STAY_MS = 10000; // a step up undone sooner counts as failed
  const MIN_SAMPLES = 3;

  function median(xs) {
    if (!xs.length) return 0;
    const s = xs.slice().sort((a, b) => a - b);
    return s[(s.length - 1) >> 1];
  }

  // fmtRate writes bits per second for people: "4.8 Mbit/s".
  function fmtRate(bps) {
    if (bps >= 1e6) return (bps / 1e6).toFixed(1) + ' Mbit/s';
    return Math.round(bps / 1e3) + ' kbit/s';
  }

  class Adapter {
    constructor() {
      this.list = []; // renditions, widest first: {name, width, height, fps, bytes}
      this.cap = 0; // device pixels the picture is shown at; 0: no cap
      this.want = ''; // the rendition asked for ('' until the first frame tells)
      this.switchAt = -Infinity;
      this.upAt = -Infinity; // the last step up, until it has stayed STAY_MS
      this.failures = 0; // step ups undone in a row
      this.bad = 0;
      this.lastProbeAt = -Infinity;
      this.probe = null; // {name, bytes, start, end, at}
      this.linkBps = 0; // the link's rate, measured while it was the bottleneck
      this.linkAt = -Infinity;
      this.reason = '';
      this.view = {}; // the last tick's figures, for the page and tests
    }

    // setRenditions takes the channel's renditions from /api/channels
    // (protocol.RenditionInfo: name, live, width, height, fps,
    // bitrate_bps). Only live ones with a size count.
    setRenditions(list) {
      const out = [];
      for (const r of Array.isArray(list) ? list : []) {
        if (!r || typeof r.name !== 'string' || !r.live || !(r.width > 0) || !(r.height > 0)) continue;
        const bytes = r.fps > 0 && r.bitrate_bps > 0 ? r.bitrate_bps / 8 / r.fps : 0;
        out.push({ name: r.name, width: r.width, height: r.height, fps: r.fps > 0 ? r.fps : 0, bytes });
      }
      out.sort((a, b) => b.width - a.width);
      this.list = out;
    }

    // setCap limits the choice to what the picture is shown at: renditions
    // no wider than the narrowest one at least width device pixels wide.
    setCap(width) {
      this.cap = width > 0 ? width : 0;
    }

    // choices are the renditions it may pick, widest first.
    choices() {
      if (!this.cap) return this.list;
      let top = 0; // index of the narrowest rendition at least cap wide
      for (let i = 0; i < this.list.length; i++) if (this.list[i].width >= this.cap) top = i;
      return this.list.slice(top);
    }

    // switched records that the player asked for rendition name at now.
    switched(now, name, up) {
      if (!up && now - this.upAt < STAY_MS) this.failures++;
      this.upAt = up ? now : -Infinity;
      this.want = name;
      this.switchAt = now;
      this.bad = 0;
      this.probe = null;
    }

    // probed records a probe of rendition name: bytes downloaded from
    // start to end (performance.now() times).
    probed(now, name, bytes, start, end) {
      this.probe = { name, bytes, start, end, at: now };
    }

    hold() {
      return Math.min(HOLD_MS * Math.pow(2, this.failures), MAX_HOLD_MS);
    }

    // bytesOf estimates the bytes of one frame of rendition r: from the
    // hub's bitrate, or else from the frames received scaled by area.
    bytesOf(r, cur, curBytes) {
      if (r.bytes > 0) return r.bytes;
      return curBytes * (r.width * r.height) / (cur.width * cur.height);
    }

    // tick decides, from the player's timing (Player.timing), what to do:
    // null, {op: 'switch', to: NAME, up: bool, why}, or {op: 'probe',
    // name}. now is performance.now().
    tick(now, timing) {
      const ch = this.choices();
      this.view = { rendition: this.want, reason: this.reason, hold: this.hold(), failures: this.failures, linkBps: this.linkBps };
      if (ch.length === 0) return null;
      const curIdx = ch.findIndex((r) => r.name === this.want);
      if (this.want === '' || curIdx < 0) {
        // The first frame names the rendition the hub chose; one outside
        // the choices (the picture was made smaller) moves to the cap.
        const drawn = timing.draws.length ? timing.draws[timing.draws.length - 1].rendition : -1;
        if (drawn < 0) return null;
        const name = drawn === 0 ? 'main' : String(drawn);
        const i = ch.findIndex((r) => r.name === name);
        if (i >= 0) {
          this.want = name;
          return null;
        }
        if (this.list.some((r) => r.name === name) && now - this.switchAt > SWITCH_WAIT_MS) {
          this.reason = 'fits the picture';
          return { op: 'switch', to: ch[0].name, up: false, why: this.reason };
        }
        return null;
      }
      const cur = ch[curIdx];
      const curNum = cur.name === 'main' ? 0 : Number(cur.name);
      const from = Math.max(now - WINDOW_MS, this.switchAt + SETTLE_MS);
      const arrivals = timing.arrivals.filter((a) => a.at >= from && a.rendition === curNum);
      const draws = timing.draws.filter((d) => d.at >= from && d.rendition === curNum);
      const decodes = timing.decodes.filter((d) => d.at >= from).map((d) => d.ms);
      const first = draws.length ? draws[0].at : now;
      if (now - this.switchAt > SWITCH_WAIT_MS && draws.length === 0 && arrivals.length === 0) {
        // Nothing of the rendition asked for arrived: the channel stopped
        // publishing it, or the hub sends another. Take what comes.
        this.want = '';
        return null;
      }
      const span = now - Math.max(from, Math.min(first, arrivals.length ? arrivals[0].at : now));
      if (span < MIN_SPAN_MS || arrivals.length < 2) return null;

      // The channel's rate, from the frames themselves: sequence numbers
      // over capture time; else the hub's figure.
      const a0 = arrivals[0];
      const a1 = arrivals[arrivals.length - 1];
      let fps = a1.captureMs - a0.captureMs >= 300 ? ((a1.seq - a0.seq) * 1000) / (a1.captureMs - a0.captureMs) : cur.fps;
      if (!(fps > 0)) return null;
      fps = Math.min(fps, 240);
      const drawn = (draws.length * 1000) / span;
      const ratio = drawn / fps;
      const curBytes = median(arrivals.map((a) => a.bytes));
      const streamBps = (arrivals.reduce((n, a) => n + a.bytes, 0) * 8 * 1000) / span;
      const ready = arrivals.filter((a) => a.ready && a.net > 0);
      if (ready.length >= MIN_SAMPLES) {
        this.linkBps = median(ready.map((a) => (a.bytes * 8 * 1000) / a.net));
        this.linkAt = now;
      }
      const net = median(arrivals.filter((a) => a.net >= 0).map((a) => a.net));
      const page = median(decodes) + median(draws.map((d) => d.wait));
      this.view = Object.assign(this.view, {
        channelFPS: Math.round(fps * 10) / 10, drawnFPS: Math.round(drawn * 10) / 10, streamBps: Math.round(streamBps),
        linkBps: Math.round(this.linkBps), netMs: Math.round(net), pageMs: Math.round(page),
      });

      if (ratio < DOWN_RATIO) {
        this.bad++;
        if (this.bad < BAD_TICKS || curIdx === ch.length - 1) {
          if (curIdx === ch.length - 1) this.reason = 'cannot keep up, and there is no smaller rendition';
          return null;
        }
        const linkBound = ready.length >= MIN_SAMPLES && net >= page;
        let to = curIdx + 1;
        if (linkBound) {
          // The largest smaller rendition whose frames fit the link.
          to = ch.length - 1;
          for (let i = curIdx + 1; i < ch.length; i++) {
            if (this.bytesOf(ch[i], cur, curBytes) * 8 * fps * FIT_ROOM <= this.linkBps) {
              to = i;
              break;
            }
          }
          this.reason = 'stepped down: the link carries ' + fmtRate(this.linkBps) + ', ' + cur.name + ' needs ' +
            fmtRate(curBytes * 8 * fps);
        } else {
          this.reason = 'stepped down: drawing ' + drawn.toFixed(1) + ' of ' + fps.toFixed(1) + ' fps (decoding and drawing take ' +
            Math.round(page) + ' ms a frame)';
        }
        return { op: 'switch', to: ch[to].name, up: false, why: this.reason };
      }
      this.bad = 0;
      if (ratio < UP_RATIO || curIdx === 0) return null;
      if (this.upAt > -Infinity && now - this.upAt >= STAY_MS) {
        // The last step up held: it was no failure.
        this.failures = 0;
        this.upAt = -Infinity;
      }
      if (now - this.switchAt < this.hold()) return null;
      const up = ch[curIdx - 1];
      const decodeUp = median(decodes) * (up.width * up.height) / (cur.width * cur.height);
      if (decodeUp > (DECODE_SHARE * 1000) / fps) {
        this.reason = 'keeping up; ' + up.name + ' would take ' + Math.round(decodeUp) + ' ms a frame to decode';
        return null;
      }
      const need = this.bytesOf(up, cur, curBytes) * 8 * fps;
      const p = this.probe;
      if (p && p.name === up.name && now - p.at < PROBE_EVERY_MS) {
        // What the link carried while the probe lasted: the probe, and the
        // frames that arrived meanwhile.
        let bytes = p.bytes;
        for (const a of timing.arrivals) if (a.at > p.start && a.at <= p.end) bytes += a.bytes;
        const carried = (bytes * 8 * 1000) / Math.max(p.end - p.start, 1);
        this.probe = null;
        // The widest rendition the probe shows room for, and the page would
        // decode in time: after a thin spell ends, one step up can go
        // straight back to the main picture.
        for (let i = 0; i < curIdx; i++) {
          const r = ch[i];
          const needR = this.bytesOf(r, cur, curBytes) * 8 * fps;
          const decodeR = median(decodes) * (r.width * r.height) / (cur.width * cur.height);
          if (carried >= needR * HEADROOM && decodeR <= (DECODE_SHARE * 1000) / fps) {
            this.reason = 'stepped up: the link carried ' + fmtRate(carried) + ', ' + r.name + ' needs ' + fmtRate(needR);
            return { op: 'switch', to: r.name, up: true, why: this.reason };
          }
        }
        this.reason = 'keeping up; the link carried ' + fmtRate(carried) + ', ' + up.name + ' needs ' + fmtRate(need);
        return null;
      }
      if (now - this.lastProbeAt >= PROBE_EVERY_MS) {
        this.lastProbeAt = now;
        return { op: 'probe', name: up.name };
      }
      return null;
    }

    // stats describes the adapter's state for the page and tests.
    stats() {
      return Object.assign({ rendition: this.want, reason: this.reason, failures: this.failures }, this.view);
    }
  }

  FH.Adapter = Adapter;
  FH.ADAPT_TICK_MS = TICK_MS;
  FH.fmtRate = fmtRate;
})(self);
