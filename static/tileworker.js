// framehub tile worker: runs grid tiles off the page's main thread. Each
// tile is an FH.Player (player.js) drawing into the OffscreenCanvas the
// page handed over (canvas.transferControlToOffscreen): the worker owns
// the tile's WebSocket, decodes each frame itself (ImageDecoder, or
// createImageBitmap where there is none), draws it with its boxes and
// events, and acknowledges it to the hub; the page receives only each
// tile's stats, a few times a second. The same guards as on the page apply
// to every frame (FH.parseFrame, FH.checkDecodable, the hub's limits).
//
// Messages from the page (tiles.js), each for one tile id:
//   {op: 'add', id, channel, canvas, opts}   canvas: transferred
//   {op: 'start', id} / {op: 'stop', id, state} / {op: 'remove', id}
//   {op: 'fit', id, width, decode, cssWidth}
//   {op: 'renditions', id, list}
//   {op: 'limits', limits}                   the hub's, as the page read them
//                                            (null: it could not), once
//   {op: 'auth', protocols}                  the view token's subprotocols
//   {op: 'timings', req, origin} / {op: 'pixels', req, id, x, y, w, h}
// Answers: {op: 'stats', tiles: {id: stats}} every STATS_MS while a tile
// runs, {op: 'timings', req, tiles: {id: timing}}, {op: 'pixels', req,
// pixels} or {op: 'pixels', req, error}.
'use strict';
importScripts('/static/protocol.js', '/static/events.js', '/static/player.js');

(function () {
  const STATS_MS = 250; // how often the page hears each tile's stats
  const tiles = new Map(); // id -> FH.Player
  let protocols = [FH.SUBPROTOCOL];
  // The hub's limits, as the page read them (its first message).
  let gotLimits;
  FH.adoptLimits('', new Promise((resolve) => { gotLimits = resolve; }));

  function post() {
    if (!tiles.size) return;
    const out = {};
    for (const [id, p] of tiles) out[id] = p.stats();
    self.postMessage({ op: 'stats', tiles: out });
  }
  setInterval(post, STATS_MS);

  // inClock is a Player's timing with every time moved by d ms (from this
  // worker's performance.now() to the page's).
  function inClock(tm, d) {
    const at = (list) => list.map((x) => Object.assign({}, x, { at: x.at + d }));
    return Object.assign({}, tm, {
      openedAt: tm.openedAt + d, arrivals: at(tm.arrivals), decodes: at(tm.decodes), draws: at(tm.draws), acks: at(tm.acks),
    });
  }

  function handle(m) {
    const p = tiles.get(m.id);
    switch (m.op) {
      case 'add': {
        const g = m.canvas.getContext('2d');
        if (!g) throw new Error('no 2d context for the tile');
        // worker: false: this worker decodes itself, in frame order.
        const opts = Object.assign({}, m.opts, { worker: false, protocols: () => protocols, headers: () => ({}) });
        tiles.set(m.id, new FH.Player(m.canvas, m.channel, opts));
        return;
      }
      case 'limits':
        gotLimits(m.limits);
        return;
      case 'auth':
        if (Array.isArray(m.protocols)) protocols = m.protocols.map(String);
        return;
      case 'timings': {
        // In the page's clock: m.origin is its performance.timeOrigin.
        const d = typeof m.origin === 'number' ? performance.timeOrigin - m.origin : 0;
        const out = {};
        for (const [id, t] of tiles) out[id] = inClock(t.timing, d);
        self.postMessage({ op: 'timings', req: m.req, tiles: out });
        return;
      }
    }
    if (!p) {
      if (m.op === 'pixels') self.postMessage({ op: 'pixels', req: m.req, error: 'no such tile' });
      return;
    }
    switch (m.op) {
      case 'start': p.start(); break;
      case 'stop': p.stop(m.state); break;
      case 'remove':
        p.close();
        tiles.delete(m.id);
        break;
      case 'fit': p.fit(m.width, m.decode, m.cssWidth); break;
      case 'renditions': p.setRenditions(m.list); break;
      case 'pixels':
        try {
          self.postMessage({ op: 'pixels', req: m.req, pixels: p.pixels(m.x, m.y, m.w, m.h) });
        } catch (e) {
          self.postMessage({ op: 'pixels', req: m.req, error: String(e) });
        }
        break;
    }
  }

  self.onmessage = (e) => {
    const m = e.data;
    if (m === null || typeof m !== 'object') return;
    handle(m);
  };
})();
