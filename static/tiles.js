// framehub grid tiles drawn off the page's main thread. A tile's canvas is
// handed to a tile worker (tileworker.js) with transferControlToOffscreen;
// the worker runs the tile's FH.Player there (WebSocket, decode, draw,
// acknowledgements), so the page's main thread does no work per frame: it
// hears each tile's stats a few times a second. Tiles share the workers,
// one per core (at most four).
//
// FH.TilePool.supported() says whether the page can do this (a browser
// without OffscreenCanvas cannot: the grid then runs FH.Player on the
// page, as before). A tile worker that fails is ended, and each of its
// tiles goes on as an FH.Player on the page, on a fresh canvas (the old
// one belongs to the dead worker), with the reason in stats().problem.
'use strict';
(function (root) {
  const FH = root.FH;
  const SCRIPT = '/static/tileworker.js';

  function supported() {
    return typeof Worker !== 'undefined' && typeof OffscreenCanvas !== 'undefined' &&
      typeof HTMLCanvasElement !== 'undefined' && typeof HTMLCanvasElement.prototype.transferControlToOffscreen === 'function';
  }

  let nextID = 1;

  // Tile is a grid tile drawn by a tile worker, with the part of
  // FH.Player's interface the grid uses. stats() is the worker's last
  // report (at most STATS_MS old); pixels() answers a promise.
  class Tile {
    constructor(pool, slot, canvas, channel, opts) {
      this.pool = pool;
      this.slot = slot;
      this.id = nextID++;
      this.canvas = canvas;
      this.channel = channel;
      this.opts = Object.assign({}, opts);
      this.running = false;
      this.fitArgs = null; // the last fit, replayed by a fallback player
      this.renditions = null;
      this.player = null; // FH.Player on the page, once the worker failed
      this.problem = '';
      this.last = {
        state: 'connecting', received: 0, drawn: 0, fps: 0, drawnFPS: 0, recentAgeMs: -1, maxWidth: this.opts.maxWidth || 0,
        ageP50: 0, ageP99: 0, skipped: 0, dropped: 0, bad: 0, badMeta: 0, problem: '', lastSeq: null, width: 0, height: 0,
        canvasWidth: canvas.width, canvasHeight: canvas.height, codec: '', rendition: '', adapt: null, reconnects: 0,
        lastFrameAgeMs: null, retryInMs: 0, stale: false, labels: [], events: [], worker: false, decoder: '', drawsIn: 'worker',
      };
      const off = canvas.transferControlToOffscreen();
      slot.tiles.set(this.id, this);
      slot.worker.postMessage({ op: 'add', id: this.id, channel, canvas: off, opts: this.opts }, [off]);
    }

    send(m) {
      m.id = this.id;
      this.slot.worker.postMessage(m);
    }

    start() {
      this.running = true;
      if (this.player) return this.player.start();
      this.pool.syncAuth(this.slot);
      this.send({ op: 'start' });
    }

    stop(state) {
      this.running = false;
      if (this.player) return this.player.stop(state);
      this.send({ op: 'stop', state });
    }

    // close ends the tile for good (its card is removed).
    close() {
      this.running = false;
      if (this.player) return this.player.close();
      this.slot.tiles.delete(this.id);
      this.send({ op: 'remove' });
    }

    fit(width, decode, cssWidth) {
      this.fitArgs = [width, decode, cssWidth];
      if (this.player) return this.player.fit(width, decode, cssWidth);
      this.send({ op: 'fit', width, decode, cssWidth });
    }

    setRenditions(list) {
      this.renditions = list;
      if (this.player) return this.player.setRenditions(list);
      this.pool.syncAuth(this.slot);
      this.send({ op: 'renditions', list: Array.isArray(list) ? list : [] });
    }

    stats() {
      if (this.player) {
        const s = this.player.stats();
        if (!s.problem) s.problem = this.problem;
        return s;
      }
      return this.last;
    }

    // timing is FH.Player's timing once the tile draws on the page;
    // before, TilePool.timings() asks the worker.
    get timing() {
      return this.player ? this.player.timing : undefined;
    }

    // pixels resolves to FH.Player's pixels() of the tile.
    pixels(x, y, w, h) {
      if (this.player) return Promise.resolve(this.player.pixels(x, y, w, h));
      return this.pool.ask(this.slot, { op: 'pixels', id: this.id, x, y, w, h }).then((a) => {
        if (a.error) throw new Error(a.error);
        return a.pixels;
      });
    }

    // fallBack goes on as an FH.Player on the page, on a fresh canvas in
    // the old one's place, since the worker that drew the old one is gone.
    fallBack(reason) {
      const fresh = document.createElement('canvas');
      fresh.width = 320;
      fresh.height = 180;
      this.canvas.replaceWith(fresh);
      this.canvas = fresh;
      this.problem = reason;
      const opts = Object.assign({}, this.opts);
      delete opts.worker; // the page's own decoder workers
      this.player = new FH.Player(fresh, this.channel, opts);
      if (this.fitArgs) this.player.fit(...this.fitArgs);
      if (this.renditions) this.player.setRenditions(this.renditions);
      if (this.running) this.player.start();
    }
  }

  // TilePool starts tile workers as tiles need them and spreads the tiles
  // over them.
  class TilePool {
    constructor() {
      this.n = Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), 4);
      this.slots = [];
      this.next = 0;
      this.reqs = new Map(); // request id -> {slot, resolve}
      this.nextReq = 1;
    }

    static supported() { return supported(); }

    // add hands canvas to a tile worker and returns its Tile; opts are
    // FH.Player's (structured-clonable values only). It returns null,
    // leaving the canvas to the page, when no worker can be started.
    add(canvas, channel, opts) {
      if (!FH.validChannelName(channel)) throw new Error('invalid channel name');
      const i = this.next++ % this.n;
      if (!this.slots[i]) {
        try {
          this.slots[i] = this.spawn();
        } catch (e) {
          return null;
        }
      }
      return new Tile(this, this.slots[i], canvas, channel, opts);
    }

    spawn() {
      const slot = { worker: new Worker(SCRIPT), tiles: new Map(), auth: '', dead: false };
      slot.worker.onmessage = (e) => this.heard(slot, e.data);
      slot.worker.onerror = (e) => {
        e.preventDefault();
        this.fail(slot, 'tile worker failed' + (e.message ? ': ' + e.message : ''));
      };
      slot.worker.onmessageerror = () => this.fail(slot, 'tile worker sent a message that cannot be read');
      // The page reads the hub's limits once; its workers take them from it.
      FH.loadLimits().then((lim) => {
        if (!slot.dead) slot.worker.postMessage({ op: 'limits', limits: lim === FH.CLIENT_GUARD ? null : lim });
      });
      return slot;
    }

    heard(slot, m) {
      if (slot.dead || m === null || typeof m !== 'object') return;
      if (m.op === 'stats' && m.tiles && typeof m.tiles === 'object') {
        for (const [id, s] of Object.entries(m.tiles)) {
          const t = slot.tiles.get(Number(id));
          if (t && s && typeof s === 'object') t.last = s;
        }
        return;
      }
      const r = this.reqs.get(m.req);
      if (r && r.slot === slot) {
        this.reqs.delete(m.req);
        r.resolve(m);
      }
    }

    // fail ends a tile worker: its tiles go on on the page; the slot gets
    // a new worker for tiles added later.
    fail(slot, reason) {
      if (slot.dead) return;
      slot.dead = true;
      slot.worker.terminate();
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = null;
      for (const t of slot.tiles.values()) t.fallBack(reason);
      slot.tiles.clear();
      for (const [req, r] of this.reqs) {
        if (r.slot !== slot) continue;
        this.reqs.delete(req);
        r.resolve({ error: reason });
      }
    }

    // ask sends m to a slot's worker and resolves to its answer (or to
    // {error} when the worker is gone or does not answer in time).
    ask(slot, m) {
      if (slot.dead) return Promise.resolve({ error: 'tile worker gone' });
      const req = this.nextReq++;
      m.req = req;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          this.reqs.delete(req);
          resolve({ error: 'tile worker did not answer' });
        }, 5000);
        this.reqs.set(req, {
          slot, resolve: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
        });
        slot.worker.postMessage(m);
      });
    }

    // timings resolves to every worker tile's FH.Player timing, by Tile,
    // its times on the page's clock.
    async timings() {
      const out = new Map();
      await Promise.all(this.slots.filter((s) => s && !s.dead).map(async (slot) => {
        const a = await this.ask(slot, { op: 'timings', origin: performance.timeOrigin });
        if (!a.tiles) return;
        for (const [id, tm] of Object.entries(a.tiles)) {
          const t = slot.tiles.get(Number(id));
          if (t) out.set(t, tm);
        }
      }));
      return out;
    }

    // syncAuth gives a worker the view token's subprotocols when they
    // changed (the page asked for a token), before its tiles connect.
    syncAuth(slot) {
      const p = FH.auth ? FH.auth.protocols() : [FH.SUBPROTOCOL];
      const key = JSON.stringify(p);
      if (slot.dead || slot.auth === key) return;
      slot.auth = key;
      slot.worker.postMessage({ op: 'auth', protocols: p });
    }
  }

  root.FH = Object.assign(root.FH || {}, { TilePool });
})(self);
