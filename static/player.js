// framehub canvas player: subscribes to a channel over WebSocket in credit
// mode, decodes only the newest frame (off the main thread, in a Worker),
// and draws on requestAnimationFrame. Used by the channel page, the grid
// and the embeddable <framehub-player> element (framehub-player.js), which
// may talk to a hub on another origin.
//
// No frame can stop it: a frame the parser refuses, one whose decode fails
// and one whose metadata cannot be used are counted (stats().bad,
// stats().badMeta, stats().problem) and acknowledged like any other, so the
// hub keeps sending, and the next frames are drawn.
'use strict';
(function (root) {
  const FH = root.FH;
  const AGE_SAMPLES = 300; // frame ages kept for percentiles
  const STALE_MS = 2500; // no frame drawn for this long: "no live video"
  // A decode that has not answered after this long (plus the test delay)
  // means its worker is hung or gone: the worker is replaced.
  const DECODE_TIMEOUT_MS = 10000;
  // After this many worker failures in a row, a decoder gives up on
  // workers and decodes on the main thread.
  const WORKER_FAILURES = 3;
  const PROBLEM_CHARS = 160; // of the last problem's description kept
  // Timing kept for the drawn rate and for an adaptive player's choices
  // (FH.Adapter, adapt.js): the last few seconds of arrivals, decodes and
  // draws.
  const TIMING_MS = 3000;
  // An adaptive player reads the channel's renditions this often.
  const RENDITIONS_MS = 3000;

  // hubOrigin returns the origin of the hub at url ("http://host:port"),
  // or this page's origin when url is empty. Only http and https hubs.
  function hubOrigin(url) {
    if (!url) return location.origin;
    const u = new URL(url, location.href);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('the hub must be an http or https URL');
    return u.origin;
  }

  // The limits of each hub, capped by the page's guard: fetched once per
  // page load, before the first subscription to that hub. A failed fetch
  // leaves the guard and is tried again on the next connection.
  const limitsOf = new Map(); // origin -> limits
  const limitsLoads = new Map(); // origin -> pending fetch
  function loadLimits(origin) {
    const o = origin || location.origin;
    if (limitsOf.has(o)) return Promise.resolve(limitsOf.get(o));
    if (!limitsLoads.has(o)) {
      // No credentials: limits are public, and a hub on another origin is
      // sent nothing the browser holds for it.
      const load = fetch(o + FH.PATH_LIMITS, { cache: 'no-store', credentials: 'omit' })
        .then((r) => {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then((j) => {
          const lim = FH.clientLimits(j);
          limitsOf.set(o, lim);
          return lim;
        }, () => FH.CLIENT_GUARD)
        .finally(() => limitsLoads.delete(o));
      limitsLoads.set(o, load);
    }
    return limitsLoads.get(o);
  }

  // adoptLimits makes this context (a tile worker) take the limits of the
  // hub at origin from limits, a promise of what the page that started it
  // has read, instead of fetching them again: once per page load. A null
  // answer (the page could not read them) leaves them to be fetched here.
  function adoptLimits(origin, limits) {
    const o = origin || location.origin;
    const load = limits.then((lim) => {
      if (limitsLoads.get(o) === load) limitsLoads.delete(o);
      if (lim === null || typeof lim !== 'object') return loadLimits(o);
      limitsOf.set(o, lim);
      return lim;
    });
    limitsLoads.set(o, load);
  }

  // decodeHere decodes on the main thread (FH.decodePicture is still
  // asynchronous), with the worker's checks and test delay.
  function decodeHere(m) {
    return new Promise((resolve) => {
      FH.checkDecodable(m);
      resolve(FH.decodePicture(m));
    }).then((d) => (m.delayMs > 0 ? new Promise((r) => setTimeout(() => r(d), m.delayMs)) : d));
  }

  let nextID = 1;

  // Decoder owns one worker and the decodes waiting on it. A worker that
  // reports an error, sends what cannot be read or stops answering is
  // ended: every decode waiting on it fails (its player counts and
  // acknowledges the frame), and the next decode starts a new worker.
  class Decoder {
    constructor() {
      this.worker = null;
      this.pending = new Map(); // id -> {resolve, reject, timer}
      this.failures = 0; // worker failures since one last answered
      this.here = typeof Worker === 'undefined'; // decode on the main thread
    }

    usesWorker() { return !this.here; }

    spawn() {
      const w = new Worker('/static/decoder.js');
      w.onmessage = (e) => this.answer(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        this.fail(w, 'decoder worker failed' + (e.message ? ': ' + e.message : ''));
      };
      w.onmessageerror = () => this.fail(w, 'decoder worker sent a message that cannot be read');
      this.worker = w;
    }

    answer(d) {
      const p = d !== null && typeof d === 'object' ? this.pending.get(d.id) : undefined;
      if (!p) return;
      this.pending.delete(d.id);
      clearTimeout(p.timer);
      this.failures = 0;
      const img = d.image && typeof d.image.close === 'function' ? d.image : null;
      if (img && d.width > 0 && d.height > 0) {
        p.resolve({ image: img, width: d.width, height: d.height, by: String(d.by || '') });
        return;
      }
      if (img) img.close();
      p.reject(new Error(d.error ? String(d.error) : 'the decoder returned nothing'));
    }

    // fail ends worker w, if it is still this decoder's, and fails every
    // decode waiting on it.
    fail(w, reason) {
      if (w !== this.worker) return;
      w.terminate();
      this.worker = null;
      if (++this.failures >= WORKER_FAILURES) this.here = true;
      const waiting = Array.from(this.pending.values());
      this.pending.clear();
      for (const p of waiting) {
        clearTimeout(p.timer);
        p.reject(new Error(reason));
      }
    }

    // decode resolves to {image, width, height, by} (FH.decodePicture: the
    // picture of m, the size to draw it at, how it was decoded), or
    // rejects; it never hangs longer than timeoutMs on a worker.
    decode(m, timeoutMs) {
      if (!this.here && !this.worker) {
        try {
          this.spawn();
        } catch (e) {
          this.here = true;
        }
      }
      if (this.here) return decodeHere(m);
      const w = this.worker;
      return new Promise((resolve, reject) => {
        const id = nextID++;
        m.id = id;
        const timer = setTimeout(() => this.fail(w, 'decoder worker did not answer within ' + timeoutMs + ' ms'), timeoutMs);
        this.pending.set(id, { resolve, reject, timer });
        try {
          w.postMessage(m, [m.payload]);
        } catch (e) {
          this.pending.delete(id);
          clearTimeout(timer);
          reject(e);
        }
      });
    }
  }

  // Decoders are shared by the players on the page, one per core (at most
  // four), each started when first picked; a player sticks to one, so its
  // frames stay in order. A player whose page cannot start the decoder
  // worker (a page on another origin than the hub's: workers must be
  // same-origin) decodes on the main thread; createImageBitmap still
  // decodes asynchronously there.
  const decoders = [];
  let nextDecoder = 0;
  function pickDecoder(useWorker) {
    if (!useWorker) {
      const d = new Decoder();
      d.here = true;
      return d;
    }
    const n = Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), 4);
    const i = nextDecoder++ % n;
    if (!decoders[i]) decoders[i] = new Decoder();
    return decoders[i];
  }

  function percentile(sorted, p) {
    if (sorted.length === 0) return 0;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
  }

  // subscribeURL asks the hub at origin for credit mode with credit
  // frames in flight from the first frame (protocol.QueryWindow), and for
  // the rendition want names ({rendition: NAME}, or {maxWidth: W}: the
  // narrowest at least W wide, else the widest; null: the main picture).
  function subscribeURL(origin, channel, credit, want) {
    let u = origin.replace(/^http/, 'ws') + FH.PATH_SUBSCRIBE + channel + '?' + FH.QUERY_WINDOW + '=' + credit;
    if (want && want.rendition) u += '&' + FH.QUERY_RENDITION + '=' + encodeURIComponent(want.rendition);
    else if (want && want.maxWidth > 0) u += '&' + FH.QUERY_MAX_WIDTH + '=' + want.maxWidth;
    return u;
  }

  // wantWidth returns a width to ask for as max-width: whole pixels within
  // what the protocol allows.
  function wantWidth(w) {
    return Math.min(Math.max(Math.ceil(w), 1), FH.MAX_RENDITION_WIDTH);
  }

  // trim drops the entries of a list of {at} older than keepMs before now.
  function trim(list, now, keepMs) {
    let i = 0;
    while (i < list.length && now - list[i].at > keepMs) i++;
    if (i) list.splice(0, i);
  }

  // noteArrival records in t (a Player's timing) that message n of the
  // connection arrived at now, and how long it took once the hub could
  // send it. With a credit window of w, the hub sends message n only
  // after the page's acknowledgement covering message n - w has reached
  // it (or at once, for the first w), and the link delivers it after the
  // one before: so net = arrival - max(that acknowledgement, the previous
  // arrival) is the message's time on the wire plus half a round trip
  // when the hub had it waiting, and otherwise also the wait for the
  // publisher's next frame. ready says the hub had it waiting: frames
  // were skipped since the previous arrival, so a newer one than that
  // was there when credit came back.
  function noteArrival(t, n, now, bytes, seq, captureMs, rendition) {
    let creditAt = t.openedAt;
    if (n > t.credit) {
      creditAt = -1;
      for (const a of t.acks) {
        if (a.n >= n - t.credit) {
          creditAt = a.at;
          break;
        }
      }
    }
    const prev = t.arrivals.length ? t.arrivals[t.arrivals.length - 1] : null;
    const since = Math.max(creditAt, prev ? prev.at : creditAt);
    t.arrivals.push({
      at: now, bytes, seq, captureMs, rendition,
      net: creditAt < 0 ? -1 : now - since,
      ready: prev !== null && seq > prev.seq + 1,
    });
    trim(t.arrivals, now, TIMING_MS);
  }

  // boxText is what is drawn by a box: its label, and its score with two
  // decimals when it has one.
  function boxText(b) {
    const score = b.score === null ? '' : b.score.toFixed(2);
    return b.label && score ? b.label + ' ' + score : b.label || score;
  }

  class Player {
    // canvas: where to draw; channel: a valid channel name.
    // opts.credit: frames in flight (default 2: one decoding, one waiting),
    //   1 to the hub's max_credit_window
    // opts.delayMs: test hook, an artificial per-frame decoding delay
    // opts.decodeTimeoutMs: how long a decoder worker may take to answer
    //   before it is replaced (default 10 s, plus delayMs)
    // opts.maxWidth: decode at most this wide (thumbnails), 0 for full size
    // opts.askWidth: ask the hub for the channel's rendition that fits this
    //   width in device pixels (max-width), 0 for the main picture
    // opts.rendition: ask for this rendition by name ('main', '320'), '' for none
    // opts.adaptive: choose the rendition from what the player measures
    //   (FH.Adapter, adapt.js), among those no wider than it is shown
    // opts.protocols: WebSocket subprotocols, or a function that returns them
    //   when connecting (FH.auth.protocols carries the view token)
    // opts.headers: a function that returns the headers of the player's
    //   own requests to the hub (FH.auth.headers carries the view token)
    // opts.hub: the hub's URL (http or https), '' for this page's origin
    // opts.worker: decode in a worker (default: when the hub is this
    //   page's origin, the only case where the page may start one)
    // opts.cssWidth: the canvas's width on the page in CSS pixels, for a
    //   canvas that cannot measure it (an OffscreenCanvas in a worker)
    // opts.decoder: test hook, 'createImageBitmap' to decode JPEG the way
    //   pages without ImageDecoder do (FH.decodeWith)
    // opts.onChange: called when the connection state changes
    constructor(canvas, channel, opts) {
      if (!FH.validChannelName(channel)) throw new Error('invalid channel name');
      this.canvas = canvas;
      this.g = canvas.getContext('2d');
      this.channel = channel;
      const protocols = FH.auth ? FH.auth.protocols : undefined;
      const headers = FH.auth ? FH.auth.headers : () => ({});
      this.opts = Object.assign({
        credit: 2, delayMs: 0, decodeTimeoutMs: DECODE_TIMEOUT_MS, maxWidth: 0, protocols, headers, onChange: null,
        hub: '', worker: undefined, decoder: '', askWidth: 0, rendition: '', adaptive: false,
      }, opts || {});
      if (!(this.opts.decodeTimeoutMs > 0)) this.opts.decodeTimeoutMs = DECODE_TIMEOUT_MS;
      if (!(this.opts.delayMs > 0)) this.opts.delayMs = 0;
      this.origin = hubOrigin(this.opts.hub);
      if (this.opts.worker === undefined) this.opts.worker = this.origin === location.origin;
      this.limits = FH.CLIENT_GUARD;
      // The rendition to ask for: {rendition}, {maxWidth}, or null.
      this.want = this.opts.rendition ? { rendition: this.opts.rendition }
        : this.opts.askWidth > 0 ? { maxWidth: wantWidth(this.opts.askWidth) } : null;
      this.fitWidth = this.opts.askWidth > 0 ? this.opts.askWidth : 0; // device pixels it is shown at
      this.cssWidth = this.opts.cssWidth > 0 ? this.opts.cssWidth : 0; // CSS pixels, when the canvas cannot say
      this.renditions = []; // the channel's, from /api/channels
      this.adapter = this.opts.adaptive && FH.Adapter ? new FH.Adapter() : null;
      this.adaptTimers = [];
      this.probing = false;
      this.hubWidth = 0; // the max-width the hub has for this connection (0: none)
      this.state = 'idle';
      this.running = false;
      this.ws = null;
      this.gen = 0; // connection generation: acks go only to the connection a frame came from
      this.arrived = 0; // binary messages received on this connection
      this.acked = 0; // the arrival number of the newest message acknowledged on it
      this.failures = 0;
      this.retryTimer = 0;
      this.retryAt = 0;
      this.decoder = null;
      this.decoding = false;
      this.pending = null; // newest frame waiting for the decoder
      this.ready = null; // decoded, waiting for the next animation frame
      this.rafID = 0;
      this.labels = [];
      this.s = {
        received: 0, drawn: 0, dropped: 0, gaps: 0, bad: 0, badMeta: 0, problem: '', reconnects: 0,
        lastRecvSeq: null, lastRecvAt: 0, lastSeq: null, width: 0, height: 0, codec: 0, rendition: 0,
        ages: [], drawTimes: [], lastDrawAt: 0, connectedOnce: false, decodedBy: '', asks: 0,
      };
      this.resetTiming();
    }

    // resetTiming starts the timing of a new connection. arrivals:
    // {at, bytes, seq, captureMs, rendition, net, ready}, where net is the
    // time the frame took to come once the hub could send it (see
    // arrivalTiming) and ready says the hub had it waiting; decodes:
    // {at, ms}; draws: {at, wait, rendition}; acks: {at, n}, the arrival
    // number each acknowledgement covers up to.
    resetTiming() {
      this.timing = { openedAt: performance.now(), credit: 1, arrivals: [], decodes: [], draws: [], acks: [] };
    }

    start() {
      if (this.running) return;
      this.running = true;
      this.connect();
      if (this.adapter) {
        this.loadRenditions();
        this.adaptTimers = [
          setInterval(() => this.adaptTick(), FH.ADAPT_TICK_MS),
          setInterval(() => this.loadRenditions(), RENDITIONS_MS),
        ];
      }
    }

    // stop ends the subscription (the tab was hidden, or the card removed).
    stop(state) {
      this.running = false;
      clearTimeout(this.retryTimer);
      for (const id of this.adaptTimers) clearInterval(id);
      this.adaptTimers = [];
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        ws.close(1000, 'viewer paused');
      }
      this.pending = null;
      this.setState(state || 'paused');
    }

    // close ends the player for good (its tile is removed).
    close() {
      this.stop('closed');
    }

    setState(s) {
      if (this.state === s) return;
      this.state = s;
      if (this.opts.onChange) this.opts.onChange(s);
    }

    // connect subscribes once the hub's limits are known.
    connect() {
      this.gen++;
      const gen = this.gen;
      this.setState('connecting');
      loadLimits(this.origin).then((lim) => {
        if (gen !== this.gen || !this.running) return;
        this.limits = lim;
        this.open(gen);
      });
    }

    open(gen) {
      const credit = Math.min(Math.max(Math.floor(this.opts.credit) || 1, 1), this.limits.maxCreditWindow);
      let ws;
      try {
        const p = this.opts.protocols;
        ws = new WebSocket(subscribeURL(this.origin, this.channel, credit, this.want), typeof p === 'function' ? p() : p);
        this.hubWidth = this.want && this.want.maxWidth ? this.want.maxWidth : 0;
      } catch (e) {
        this.retry();
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      this.arrived = 0;
      this.acked = 0;
      this.resetTiming();
      this.timing.credit = credit;
      ws.onopen = () => {
        if (gen !== this.gen) return;
        this.timing.openedAt = performance.now();
        if (this.s.connectedOnce) this.s.reconnects++;
        this.s.connectedOnce = true;
        this.failures = 0;
        this.setState('waiting');
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

    // ack acknowledges a message {gen, n, seq}: n is its arrival number on
    // its connection. Acks are cumulative (the hub frees the acknowledged
    // frame and every frame sent before it), so one that an ack of a later
    // message already covered is not sent again.
    ack(f) {
      if (f.gen !== this.gen || f.n <= this.acked) return;
      const ws = this.ws;
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send('{"op":"ack","seq":' + f.seq.toString() + '}');
        this.acked = f.n;
        const now = performance.now();
        this.timing.acks.push({ at: now, n: f.n });
        trim(this.timing.acks, now, TIMING_MS);
      }
    }

    arrivalTiming(n, now, bytes, f) {
      noteArrival(this.timing, n, now, bytes, Number(f.seq), f.captureTimeMs, f.rendition || 0);
    }

    // skip counts a message or frame that will not be drawn and keeps why.
    skip(why) {
      this.s.bad++;
      this.note(why);
    }

    note(why) {
      this.s.problem = String(why).slice(0, PROBLEM_CHARS);
    }

    onMessage(data, gen) {
      const s = this.s;
      if (typeof data === 'string') {
        this.skip('unexpected text message from the hub'); // frames are binary; text carries no credit
        return;
      }
      const n = ++this.arrived;
      const arrivedAt = performance.now();
      let f;
      try {
        f = FH.parseFrame(data, this.limits);
      } catch (e) {
        this.skip(e instanceof FH.FrameError ? e.message : 'cannot parse frame: ' + e);
        const seq = FH.peekSeq(data);
        if (seq === null) {
          // Nothing to acknowledge it by, so the credit it holds is lost
          // on this connection: start a fresh one.
          if (this.ws) this.ws.close(4000, 'frame without a sequence number');
          return;
        }
        this.ack({ gen, n, seq });
        return;
      }
      f.gen = gen;
      f.n = n;
      this.arrivalTiming(n, arrivedAt, data.byteLength, f);
      const meta = FH.frameBoxes(f.meta);
      f.boxes = meta.boxes;
      const evs = FH.frameEvents(f.meta);
      f.events = evs.events;
      if (meta.problem || evs.problem) {
        s.badMeta++;
        this.note('metadata: ' + (meta.problem || evs.problem));
      }
      s.received++;
      const now = performance.now();
      if (s.lastRecvSeq !== null) s.gaps += FH.skippedFrames(s.lastRecvSeq, f.seq, now - s.lastRecvAt);
      s.lastRecvSeq = f.seq;
      s.lastRecvAt = now;
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
      f.decodeAt = performance.now();
      if (!this.decoder) this.decoder = pickDecoder(this.opts.worker);
      let p;
      try {
        const m = {
          codec: f.codec, payload: f.payload.slice().buffer, // a copy the worker can own
          width: f.width, height: f.height, elemType: f.elemType, channels: f.channels,
          maxPixels: this.limits.maxPixels, delayMs: this.opts.delayMs, maxWidth: this.opts.maxWidth,
          decoder: this.opts.decoder,
        };
        p = this.decoder.decode(m, this.opts.decodeTimeoutMs + this.opts.delayMs);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then((d) => {
        this.s.decodedBy = d.by;
        this.decoded(f, d, null);
      }, (err) => this.decoded(f, null, err || new Error('decode failed')));
    }

    // decoded takes frame f's picture ({image, width, height}) or the
    // error that stopped it.
    decoded(f, pic, err) {
      this.decoding = false;
      const now = performance.now();
      f.decodedAt = now;
      this.timing.decodes.push({ at: now, ms: now - f.decodeAt });
      trim(this.timing.decodes, now, TIMING_MS);
      if (err || !pic) {
        this.skip('decode failed: ' + (err && err.message ? err.message : String(err)));
        this.ack(f);
      } else {
        if (this.ready) {
          this.ready.pic.image.close(); // replaced before it was drawn; the next ack covers it
          this.s.dropped++;
        }
        this.ready = { f, pic };
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
      try {
        const bw = r.pic.width;
        const bh = r.pic.height;
        if (this.canvas.width !== bw || this.canvas.height !== bh) {
          this.canvas.width = bw;
          this.canvas.height = bh;
        }
        this.g.drawImage(r.pic.image, 0, 0, bw, bh);
        this.drawBoxes(f, bw / f.width);
        this.events = FH.drawEvents(this.g, this.canvas, f.events, this.pixelsPerCSS());
        const s = this.s;
        const now = performance.now();
        s.drawn++;
        s.lastDrawAt = now;
        s.lastSeq = f.seq;
        s.width = f.width;
        s.height = f.height;
        s.codec = f.codec;
        s.rendition = f.rendition || 0;
        const age = Date.now() - f.captureTimeMs;
        s.ages.push(age);
        if (s.ages.length > AGE_SAMPLES) s.ages.shift();
        s.drawTimes.push(now);
        while (s.drawTimes.length && now - s.drawTimes[0] > 1000) s.drawTimes.shift();
        this.timing.draws.push({ at: now, wait: now - f.decodedAt, age, rendition: f.rendition || 0 });
        trim(this.timing.draws, now, TIMING_MS);
        if (f.gen === this.gen && this.ws) this.setState('live');
      } catch (e) {
        this.skip('cannot draw frame: ' + e);
      } finally {
        r.pic.image.close();
        this.ack(f);
      }
    }

    // drawBoxes draws a frame's metadata boxes (FH.frameBoxes: already
    // checked) over the picture, each with its label and score as canvas
    // text, never as HTML, on a dark band so it reads on any picture.
    // Coordinates are in frame pixels; scale maps them to the canvas. Lines
    // and text keep a readable size however small the canvas is shown.
    drawBoxes(f, scale) {
      const boxes = f.boxes || [];
      this.labels = [];
      if (!boxes.length) return;
      const g = this.g;
      const w = this.canvas.width;
      const px = this.pixelsPerCSS();
      const lw = Math.max(2, Math.round(2 * px), Math.round(w / 400));
      const font = Math.max(12, Math.round(12 * px), Math.round(w / 60));
      g.save();
      g.lineWidth = lw;
      g.strokeStyle = '#3f3';
      g.font = font + 'px sans-serif';
      g.textBaseline = 'bottom';
      for (const b of boxes) {
        const x = b.x * scale;
        const y = b.y * scale;
        g.strokeRect(x, y, b.w * scale, b.h * scale);
        const text = boxText(b);
        if (!text) continue;
        this.labels.push(text);
        // Above the box, or inside its top edge when there is no room.
        const base = y - lw >= font ? y - lw : y + lw + font;
        g.fillStyle = 'rgba(0, 0, 0, 0.6)';
        g.fillRect(x, base - font, g.measureText(text).width + 2 * lw, font);
        g.fillStyle = '#3f3';
        g.fillText(text, x + lw, base);
      }
      g.restore();
    }

    // pixelsPerCSS is how many canvas pixels one CSS pixel of the page
    // shows: from the canvas element's own width, or, for an OffscreenCanvas
    // (which has no layout), from the CSS width the page last told fit.
    pixelsPerCSS() {
      const css = this.canvas.clientWidth > 0 ? this.canvas.clientWidth : this.cssWidth;
      return css > 0 ? this.canvas.width / css : 1;
    }

    // pixels reads the RGBA pixels of a rectangle of what the canvas shows
    // (the whole canvas when w or h is not positive), for tests:
    // {width, height} of the canvas and data, the rectangle's bytes.
    pixels(x, y, w, h) {
      const cw = this.canvas.width;
      const ch = this.canvas.height;
      if (!(w > 0 && h > 0)) {
        x = 0;
        y = 0;
        w = cw;
        h = ch;
      }
      return { width: cw, height: ch, data: Array.from(this.g.getImageData(x, y, w, h).data) };
    }

    // stale reports whether frames stopped being drawn after some were.
    stale() {
      return this.s.drawn > 0 && performance.now() - this.s.lastDrawAt > STALE_MS;
    }

    // drawnFPS is the rate frames were drawn at over the last two seconds
    // (or since the connection opened, when that is shorter).
    drawnFPS() {
      const now = performance.now();
      const span = Math.min(2000, now - this.timing.openedAt);
      if (span < 250) return 0;
      let n = 0;
      for (const d of this.timing.draws) if (now - d.at <= span) n++;
      return (n * 1000) / span;
    }

    // recentAge is the median age of the frames drawn in the last two
    // seconds, in ms, or -1 when none was.
    recentAge() {
      const now = performance.now();
      const ages = this.timing.draws.filter((d) => now - d.at <= 2000).map((d) => d.age).sort((a, b) => a - b);
      return ages.length ? percentile(ages, 50) : -1;
    }

    // fit tells the player how wide its picture is shown, in device
    // pixels (and in CSS pixels, cssWidth, which a player drawing into an
    // OffscreenCanvas cannot measure itself). With decode, it decodes
    // frames at most that wide from the next one on. A player that asks by size asks the hub again when the
    // rendition that fits is another one; an adaptive one chooses among
    // the renditions no wider than that.
    fit(width, decode, cssWidth) {
      if (cssWidth > 0) this.cssWidth = cssWidth;
      if (!(width > 0)) return;
      this.fitWidth = Math.ceil(width);
      if (decode) this.opts.maxWidth = this.fitWidth;
      if (this.adapter) {
        this.adapter.setCap(this.fitWidth);
        return;
      }
      if (!this.want || !this.want.maxWidth) return;
      this.want = { maxWidth: wantWidth(width) };
      this.followWidth();
    }

    // followWidth asks the hub again for the width wanted now, when the
    // rendition it picks for the max-width it has is another one: a channel
    // with one rendition, or a resize within one rendition's range, needs
    // no message; a rendition that appears after a resize may.
    followWidth() {
      if (!this.want || !this.want.maxWidth || this.hubWidth === this.want.maxWidth) return;
      const sizes = this.renditions.filter((r) => r.live);
      if (FH.pickRendition(sizes, this.hubWidth) !== FH.pickRendition(sizes, this.want.maxWidth)) this.sendWant();
    }

    // setRenditions tells the player the channel's renditions
    // (/api/channels), which an adaptive player reads for itself.
    setRenditions(list) {
      this.renditions = Array.isArray(list) ? list.filter((r) => r && typeof r.name === 'string' && r.width > 0) : [];
      if (this.adapter) this.adapter.setRenditions(this.renditions);
      else this.followWidth();
    }

    // ask switches to another rendition on the open connection (and asks
    // for it on the next one): want is {rendition: NAME} or {maxWidth: W}.
    ask(want) {
      this.want = want;
      this.sendWant();
    }

    sendWant() {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN || !this.want) return;
      const m = { op: FH.OP_RENDITION };
      if (this.want.rendition) m.rendition = this.want.rendition;
      else m.max_width = this.want.maxWidth;
      ws.send(JSON.stringify(m));
      this.s.asks++;
      this.hubWidth = this.want.maxWidth || 0;
    }

    // loadRenditions reads the channel's renditions from the hub.
    async loadRenditions() {
      try {
        const r = await fetch(this.origin + '/api/channels', { cache: 'no-store', credentials: 'omit', headers: this.opts.headers() });
        if (!r.ok) return;
        const list = await r.json();
        const ch = Array.isArray(list) ? list.find((c) => c && c.name === this.channel) : null;
        if (ch) this.setRenditions(ch.renditions);
      } catch (e) { /* the hub is unreachable: the connection says so */ }
    }

    // adaptTick asks the adapter what to do, and does it.
    adaptTick() {
      if (this.state !== 'live' || (typeof document !== 'undefined' && document.hidden)) return;
      const now = performance.now();
      const a = this.adapter.tick(now, this.timing);
      if (!a) return;
      if (a.op === 'switch') {
        this.ask({ rendition: a.to });
        this.adapter.switched(now, a.to, a.up);
      } else if (a.op === 'probe') {
        this.probe(a.name);
      }
    }

    // probe times one download of rendition name's newest frame (its
    // snapshot) for the adapter: how much the link carries besides the
    // stream.
    async probe(name) {
      if (this.probing) return;
      this.probing = true;
      const start = performance.now();
      try {
        const r = await fetch(this.origin + '/channels/' + this.channel + '/snapshot.jpg?' + FH.QUERY_RENDITION + '=' +
          encodeURIComponent(name), { cache: 'no-store', credentials: 'omit', headers: this.opts.headers() });
        if (!r.ok) return;
        const b = await r.arrayBuffer();
        const end = performance.now();
        if (this.adapter) this.adapter.probed(end, name, b.byteLength, start, end);
      } catch (e) {
        /* no probe this time */
      } finally {
        this.probing = false;
      }
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
        drawnFPS: Math.round(this.drawnFPS() * 10) / 10, // frames drawn per second, over the last 2 s
        recentAgeMs: Math.round(this.recentAge()), // median age of those, -1 if none
        maxWidth: this.opts.maxWidth, // decoded at most this wide (0: full size)
        ageP50: percentile(ages, 50),
        ageP99: percentile(ages, 99),
        skipped: s.gaps + s.dropped,
        dropped: s.dropped,
        bad: s.bad,
        badMeta: s.badMeta,
        problem: s.problem,
        lastSeq: s.lastSeq === null ? null : s.lastSeq.toString(),
        width: s.width,
        height: s.height,
        canvasWidth: this.canvas.width, // the picture drawn last, in canvas pixels
        canvasHeight: this.canvas.height,
        codec: s.codec === FH.CODEC_RAW ? 'raw' : s.codec === FH.CODEC_JPEG ? 'jpeg' : '',
        rendition: s.drawn ? FH.renditionName(s.rendition) : '', // of the frame drawn last: 'main' or its width
        adapt: this.adapter ? this.adapter.stats() : null, // an adaptive player's choice and why
        reconnects: s.reconnects,
        asks: s.asks, // rendition control messages sent to the hub
        lastFrameAgeMs: s.lastDrawAt ? performance.now() - s.lastDrawAt : null,
        retryInMs: this.state === 'reconnecting' ? Math.max(0, this.retryAt - performance.now()) : 0,
        stale: this.stale(),
        labels: this.labels.slice(),
        events: (this.events || []).slice(), // the events going on in the frame drawn last
        worker: !!this.decoder && this.decoder.usesWorker(),
        decoder: s.decodedBy, // how the last frame was decoded: 'ImageDecoder' or 'createImageBitmap'
        drawsIn: typeof document === 'undefined' ? 'worker' : 'page', // the thread that receives, decodes and draws
      };
    }
  }

  root.FH = Object.assign(root.FH || {}, { Player, percentile, loadLimits, adoptLimits, boxText, hubOrigin, noteArrival });
})(self);
