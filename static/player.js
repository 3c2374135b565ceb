// framehub canvas player: subscribes to a channel over WebSocket in credit
// mode, decodes only the newest frame (off the main thread, in a Worker),
// and draws on requestAnimationFrame. Used by the channel page and the grid.
'use strict';
(function (root) {
  const FH = root.FH;
  const AGE_SAMPLES = 300; // frame ages kept for percentiles
  const STALE_MS = 2500; // no frame for this long: "no live video"

  // A small pool of decoder workers, one per core (at most 4), shared by the
  // players on the page; each player sticks to one worker so its frames stay
  // in order. Without Worker support, createImageBitmap runs on the main
  // thread (it still decodes asynchronously).
  const pool = [];
  let poolTried = false;
  let nextWorker = 0;
  const waiting = new Map();
  let nextID = 1;

  function pickDecoder() {
    if (!poolTried) {
      poolTried = true;
      const n = Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), 4);
      try {
        for (let i = 0; i < n; i++) {
          const w = new Worker('/static/decoder.js');
          w.onmessage = (e) => {
            const cb = waiting.get(e.data.id);
            waiting.delete(e.data.id);
            if (cb) cb(e.data.bitmap, e.data.error);
          };
          pool.push(w);
        }
      } catch (e) {
        pool.length = 0;
      }
    }
    if (!pool.length) return null;
    return pool[nextWorker++ % pool.length];
  }

  // decode turns a parsed frame into an ImageBitmap, at most maxWidth wide.
  function decode(w, f, delayMs, maxWidth) {
    const m = {
      codec: f.codec, payload: f.payload.slice().buffer, // a copy the worker can own
      width: f.width, height: f.height, channels: f.channels, delayMs, maxWidth,
    };
    if (w) {
      return new Promise((resolve, reject) => {
        m.id = nextID++;
        waiting.set(m.id, (bitmap, err) => (err ? reject(new Error(err)) : resolve(bitmap)));
        w.postMessage(m, [m.payload]);
      });
    }
    const p = createImageBitmap(FH.decodeSource(m), FH.resizeOptions(m));
    return delayMs > 0 ? p.then((b) => new Promise((r) => setTimeout(() => r(b), delayMs))) : p;
  }

  function percentile(sorted, p) {
    if (sorted.length === 0) return 0;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
  }

  function subscribeURL(channel) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/ws/subscribe/' + channel;
  }

  class Player {
    // canvas: where to draw; channel: a valid channel name.
    // opts.credit: frames in flight (default 2: one decoding, one waiting)
    // opts.delayMs: test hook, an artificial per-frame decoding delay
    // opts.maxWidth: decode at most this wide (thumbnails), 0 for full size
    // opts.protocols: WebSocket subprotocols, or a function that returns them
    //   when connecting (FH.auth.protocols carries the view token)
    // opts.onChange: called when the connection state changes
    constructor(canvas, channel, opts) {
      if (!FH.validChannelName(channel)) throw new Error('invalid channel name');
      this.canvas = canvas;
      this.g = canvas.getContext('2d');
      this.channel = channel;
      const protocols = FH.auth ? FH.auth.protocols : undefined;
      this.opts = Object.assign({ credit: 2, delayMs: 0, maxWidth: 0, protocols, onChange: null }, opts || {});
      this.state = 'idle';
      this.running = false;
      this.ws = null;
      this.gen = 0; // connection generation: acks go only to the connection a frame came from
      this.failures = 0;
      this.retryTimer = 0;
      this.retryAt = 0;
      this.decoding = false;
      this.pending = null; // newest frame waiting for the decoder
      this.ready = null; // decoded, waiting for the next animation frame
      this.rafID = 0;
      this.labels = [];
      this.s = {
        received: 0, drawn: 0, dropped: 0, gaps: 0, bad: 0, reconnects: 0,
        lastRecvSeq: null, lastSeq: null, width: 0, height: 0, codec: 0,
        ages: [], drawTimes: [], lastFrameAt: 0, connectedOnce: false,
      };
    }

    start() {
      if (this.running) return;
      this.running = true;
      this.connect();
    }

    // stop ends the subscription (the tab was hidden, or the card removed).
    stop(state) {
      this.running = false;
      clearTimeout(this.retryTimer);
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        ws.close(1000, 'viewer paused');
      }
      this.pending = null;
      this.setState(state || 'paused');
    }

    setState(s) {
      if (this.state === s) return;
      this.state = s;
      if (this.opts.onChange) this.opts.onChange(s);
    }

    connect() {
      this.gen++;
      const gen = this.gen;
      this.setState('connecting');
      let ws;
      try {
        const p = this.opts.protocols;
        ws = new WebSocket(subscribeURL(this.channel), typeof p === 'function' ? p() : p);
      } catch (e) {
        this.retry();
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      ws.onopen = () => {
        if (gen !== this.gen) return;
        if (this.s.connectedOnce) this.s.reconnects++;
        this.s.connectedOnce = true;
        this.failures = 0;
        this.setState('waiting');
        ws.send(JSON.stringify({ op: 'credit', window: this.opts.credit }));
      };
      ws.onmessage = (ev) => {
        if (gen === this.gen) this.onMessage(ev.data, gen);
      };
      ws.onclose = () => {
        if (gen !== this.gen || !this.running) return;
        this.ws = null;
        this.pending = null;
        this.retry();
      };
    }

    // retry reconnects after a capped, jittered backoff.
    retry() {
      const ceil = Math.min(2500, 250 * Math.pow(2, this.failures));
      this.failures++;
      const delay = ceil / 2 + Math.random() * (ceil / 2);
      this.retryAt = performance.now() + delay;
      this.setState('reconnecting');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (this.running) this.connect();
      }, delay);
    }

    ack(f) {
      if (f.gen === this.gen && this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send('{"op":"ack","seq":' + f.seq.toString() + '}');
      }
    }

    onMessage(data, gen) {
      let f;
      try {
        f = FH.parseFrame(data);
      } catch (e) {
        this.s.bad++;
        return;
      }
      f.gen = gen;
      const s = this.s;
      s.received++;
      s.lastFrameAt = performance.now();
      if (s.lastRecvSeq !== null && f.seq > s.lastRecvSeq + 1n) s.gaps += Number(f.seq - s.lastRecvSeq - 1n);
      s.lastRecvSeq = f.seq;
      if (this.state !== 'live') this.setState('live');
      if (this.decoding) {
        // Keep only the newest frame while the decoder is busy. The dropped
        // one is not acknowledged on its own: acks are cumulative, and the
        // ack of the newer frame, once drawn, covers it. Acking it now would
        // hand the credit straight back and let the hub stream at full rate.
        if (this.pending) s.dropped++;
        this.pending = f;
        return;
      }
      this.startDecode(f);
    }

    startDecode(f) {
      this.decoding = true;
      if (this.decoder === undefined) this.decoder = pickDecoder();
      decode(this.decoder, f, this.opts.delayMs, this.opts.maxWidth).then(
        (bitmap) => this.decoded(f, bitmap, null),
        (err) => this.decoded(f, null, err),
      );
    }

    decoded(f, bitmap, err) {
      this.decoding = false;
      if (err) {
        this.s.bad++;
        this.ack(f);
      } else {
        if (this.ready) {
          this.ready.bitmap.close(); // replaced before it was drawn; the next ack covers it
          this.s.dropped++;
        }
        this.ready = { f, bitmap };
        if (!this.rafID) this.rafID = requestAnimationFrame(() => this.draw());
      }
      if (this.pending) {
        const next = this.pending;
        this.pending = null;
        this.startDecode(next);
      }
    }

    draw() {
      this.rafID = 0;
      const r = this.ready;
      if (!r) return;
      this.ready = null;
      const f = r.f;
      const bw = r.bitmap.width;
      const bh = r.bitmap.height;
      if (this.canvas.width !== bw || this.canvas.height !== bh) {
        this.canvas.width = bw;
        this.canvas.height = bh;
      }
      this.g.drawImage(r.bitmap, 0, 0);
      r.bitmap.close();
      this.drawBoxes(f, bw / f.width);
      const s = this.s;
      const now = performance.now();
      s.drawn++;
      s.lastSeq = f.seq;
      s.width = f.width;
      s.height = f.height;
      s.codec = f.codec;
      s.ages.push(Date.now() - f.captureTimeMs);
      if (s.ages.length > AGE_SAMPLES) s.ages.shift();
      s.drawTimes.push(now);
      while (s.drawTimes.length && now - s.drawTimes[0] > 1000) s.drawTimes.shift();
      this.ack(f);
    }

    // drawBoxes draws metadata boxes, {"boxes":[{"x","y","w","h","label"}]},
    // over the picture. Labels are drawn as canvas text, never as HTML.
    // Coordinates are in frame pixels; scale maps them to the canvas.
    drawBoxes(f, scale) {
      const boxes = f.meta && Array.isArray(f.meta.boxes) ? f.meta.boxes : [];
      this.labels = [];
      if (!boxes.length) return;
      const g = this.g;
      const w = f.width * scale;
      const lw = Math.max(2, Math.round(w / 400));
      g.lineWidth = lw;
      g.strokeStyle = '#3f3';
      g.fillStyle = '#3f3';
      g.font = Math.max(12, Math.round(w / 60)) + 'px sans-serif';
      for (const b of boxes.slice(0, 256)) {
        if (![b.x, b.y, b.w, b.h].every(Number.isFinite)) continue;
        const x = b.x * scale;
        const y = b.y * scale;
        g.strokeRect(x, y, b.w * scale, b.h * scale);
        if (typeof b.label === 'string') {
          const label = b.label.slice(0, 64);
          this.labels.push(label);
          g.fillText(label, x + lw, Math.max(y - lw * 2, 12));
        }
      }
    }

    // stale reports whether frames stopped arriving after some were shown.
    stale() {
      return this.s.drawn > 0 && performance.now() - this.s.lastFrameAt > STALE_MS;
    }

    // stats is what the page shows, and what tests read.
    stats() {
      const s = this.s;
      const ages = s.ages.slice().sort((a, b) => a - b);
      return {
        state: this.state,
        received: s.received,
        drawn: s.drawn,
        fps: s.drawTimes.filter((t) => performance.now() - t <= 1000).length,
        ageP50: percentile(ages, 50),
        ageP99: percentile(ages, 99),
        skipped: s.gaps + s.dropped,
        dropped: s.dropped,
        bad: s.bad,
        lastSeq: s.lastSeq === null ? null : s.lastSeq.toString(),
        width: s.width,
        height: s.height,
        codec: s.codec === FH.CODEC_RAW ? 'raw' : s.codec === FH.CODEC_JPEG ? 'jpeg' : '',
        reconnects: s.reconnects,
        lastFrameAgeMs: s.lastFrameAt ? performance.now() - s.lastFrameAt : null,
        retryInMs: this.state === 'reconnecting' ? Math.max(0, this.retryAt - performance.now()) : 0,
        stale: this.stale(),
        labels: this.labels.slice(),
        worker: !!this.decoder,
      };
    }
  }

  root.FH = Object.assign(root.FH || {}, { Player, percentile });
})(self);
