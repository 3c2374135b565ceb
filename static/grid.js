// The home page: a live grid of every channel, updated without reloads.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const cards = new Map(); // name -> {el, player, info, nolive, fit}
  const REFIT_MS = 200; // a tile resized: fit it once it has kept its size this long
  // Test hook: a slow decoder, as on a page that cannot keep up.
  const params = new URLSearchParams(location.search);
  const delayMs = Number(params.get('test-delay-ms')) || 0;
  // Test hook: decode as a page without ImageDecoder does (FH.decodeWith).
  const decoder = params.get('test-decoder') === 'createImageBitmap' ? 'createImageBitmap' : '';
  // Tiles are drawn by tile workers (tiles.js) where the browser can hand
  // a canvas to a worker; test hook: ?test-grid=page draws them on the
  // page's main thread, as browsers without OffscreenCanvas do.
  const pool = params.get('test-grid') !== 'page' && FH.TilePool.supported() ? new FH.TilePool() : null;
  $('publish-hint').textContent =
    'framehub publish --hub ' + location.origin + ' --channel cam1 --source 0\n' +
    'framehub publish --hub ' + location.origin + ' --channel pattern --source test';

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addCard(name) {
    const card = el('article', 'card');
    card.dataset.channel = name;
    const link = el('a', 'thumb');
    link.href = '/view/' + encodeURIComponent(name);
    const canvas = el('canvas');
    canvas.width = 320;
    canvas.height = 180;
    link.appendChild(canvas);
    const nolive = el('div', 'nolive small', 'no live video');
    nolive.hidden = true;
    link.appendChild(nolive);
    const title = el('a', 'name', name);
    title.href = link.href;
    const info = el('div', 'info muted');
    const events = el('ul', 'events');
    card.append(link, title, info, events);
    $('grid').appendChild(card);
    // A tile asks the hub for the channel's rendition that fits it in
    // device pixels (the narrowest at least as wide, else the widest), and
    // decodes frames no wider than that: a fraction of the work of a full
    // 720p or 1080p frame, so many channels stay live on one page.
    const w = tileWidth(canvas);
    const opts = { credit: 1, maxWidth: w, askWidth: w, delayMs, decoder, cssWidth: canvas.clientWidth };
    const player = (pool && pool.add(canvas, name, opts)) || new FH.Player(canvas, name, opts);
    const c = { el: card, player, info, nolive, fit: fitter(link, player) };
    if (!document.hidden) player.start();
    c.events = events;
    cards.set(name, c);
    FH.renderEvents(events, feed.events(name), 3);
  }

  function removeCard(name) {
    const c = cards.get(name);
    c.fit.stop();
    c.player.close();
    c.el.remove();
    cards.delete(name);
  }

  // tileWidth is how wide a tile's canvas is shown, in device pixels.
  function tileWidth(canvas) {
    return Math.max(64, Math.round((canvas.clientWidth || canvas.width) * (window.devicePixelRatio || 1)));
  }

  // fitter keeps a tile's player fitted to the tile's size in device
  // pixels (its canvas fills box): when the tile is resized, it tells the
  // player once the size has settled. A change of the device pixel ratio
  // alone (the window moved to another screen) need not resize the CSS box
  // nor, in every browser, fire an event: check() catches it, from the
  // label's timer, by the ratio alone (reading the tile's width there
  // would make the browser lay out the page again after each label it has
  // just written), against the ratio of the last fit, so that a fit made
  // while the ratio was changing back and forth is made again.
  function fitter(box, player) {
    let timer = 0;
    let fitted = 0; // the device pixel ratio the last fit was made at
    const refit = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = 0;
        fitted = window.devicePixelRatio || 1;
        // player.canvas: a tile whose worker failed draws on a new one.
        player.fit(tileWidth(player.canvas), true, player.canvas.clientWidth);
      }, REFIT_MS);
    };
    const ro = new ResizeObserver(refit);
    ro.observe(box);
    return {
      check() {
        if (!timer && (window.devicePixelRatio || 1) !== fitted) refit();
      },
      stop() {
        clearTimeout(timer);
        ro.disconnect();
      },
    };
  }

  function fmtAge(ms) {
    if (ms < 0) return '–';
    return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s';
  }

  // showLabel writes a tile's label from the channel's last listing and
  // what the tile draws now.
  function showLabel(c, ps) {
    if (!c.ch) return;
    c.info.textContent = label(c.ch, ps);
    c.info.title = 'the channel: ' + c.ch.fps.toFixed(1) + ' fps at the hub; this tile: what it draws';
  }

  // label is a tile's line: the channel's size, then what the tile draws
  // (the picture it receives when that is a smaller rendition, the frames
  // it draws per second and their age when drawn), and the viewers.
  function label(ch, ps) {
    const parts = [ch.width + '×' + ch.height];
    if (ps.drawn && (ps.width !== ch.width || ps.height !== ch.height)) parts[0] += ' (drawing ' + ps.width + '×' + ps.height + ')';
    if (ps.drawn) parts.push(ps.drawnFPS.toFixed(1) + ' fps', 'age ' + fmtAge(ps.recentAgeMs));
    else parts.push('no frame drawn yet');
    parts.push(ch.subscribers + (ch.subscribers === 1 ? ' viewer' : ' viewers'));
    if (ps.bad) parts.push(ps.bad + (ps.bad === 1 ? ' bad frame' : ' bad frames') + ' skipped');
    return parts.join('  ·  ');
  }

  // sourceNote says, for the no-live-video mark, what the hub knows of a
  // channel's camera when it is not live (source_state in the listing).
  function sourceNote(ch) {
    switch (ch.source_state) {
      case 'reconnecting': return 'camera lost — retrying';
      case 'stalled': return 'camera stalled — waiting';
      case 'ended': return 'camera stream ended';
    }
    return '';
  }

  async function refresh() {
    let list;
    try {
      const resp = await FH.auth.fetchWithToken('/api/channels');
      if (!resp.ok) throw new Error(resp.status);
      list = await resp.json();
      $('summary').textContent = list.length + (list.length === 1 ? ' channel' : ' channels');
    } catch (e) {
      $('summary').textContent = 'hub unreachable, retrying…';
      return;
    }
    const names = new Set();
    for (const ch of list) {
      if (!FH.validChannelName(ch.name)) continue;
      names.add(ch.name);
      if (!cards.has(ch.name)) addCard(ch.name);
      const c = cards.get(ch.name);
      c.ch = ch;
      c.player.setRenditions(ch.renditions);
      const ps = c.player.stats();
      showLabel(c, ps);
      const note = typeof ch.source_state === 'string' ? sourceNote(ch) : '';
      c.nolive.textContent = note || 'no live video';
      c.nolive.title = note && typeof ch.source_error === 'string' ? ch.source_error : '';
      c.nolive.hidden = !note && ch.live && !ps.stale;
      c.el.classList.toggle('offline', !ch.live);
      c.el.classList.toggle('event', ps.events.length > 0 || feed.active(ch.name));
    }
    for (const name of Array.from(cards.keys())) {
      if (!names.has(name)) removeCard(name);
    }
    $('empty').hidden = cards.size > 0;
  }

  document.addEventListener('visibilitychange', () => {
    for (const c of cards.values()) {
      if (document.hidden) c.player.stop('paused');
      else c.player.start();
    }
  });
  // The hub's recent events of every channel: a card lists its channel's
  // last three, and is marked while one goes on.
  const feed = new FH.EventFeed('', () => {
    for (const [name, c] of cards) {
      FH.renderEvents(c.events, feed.events(name), 3);
      c.el.classList.toggle('event', c.player.stats().events.length > 0 || feed.active(name));
    }
  });
  feed.start();
  window.framehubGrid = {
    channels: () => Array.from(cards.keys()),
    stats: () => Object.fromEntries(Array.from(cards, ([n, c]) => [n, c.player.stats()])),
    // A promise of each tile's timing of the last seconds (FH.Player's
    // timing: arrivals, decodes, draws with their ages), for benchmarks.
    timings: async () => {
      const off = pool ? await pool.timings() : new Map();
      return Object.fromEntries(Array.from(cards, ([n, c]) => [n, off.get(c.player) || c.player.timing]).filter(([, t]) => t));
    },
    // A promise of the RGBA pixels of a tile's canvas (FH.Player's pixels:
    // {width, height, data}), the whole canvas or the rectangle x, y, w, h:
    // a canvas drawn by a worker cannot be read on the page.
    pixels: (name, x, y, w, h) => {
      const c = cards.get(name);
      return c ? Promise.resolve(c.player.pixels(x, y, w, h)) : Promise.reject(new Error('no tile ' + name));
    },
    feed,
  };
  FH.loadLimits(); // fetched alongside the channel list; players wait for it before subscribing
  refresh();
  setInterval(refresh, 1500);
  // What a tile draws changes faster than the channel list.
  setInterval(() => {
    for (const c of cards.values()) {
      showLabel(c, c.player.stats());
      c.fit.check();
    }
  }, 500);
})();
