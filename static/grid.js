// The home page: a live grid of every channel, updated without reloads.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const cards = new Map(); // name -> {el, player, info}
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
    card.append(link, title, info);
    $('grid').appendChild(card);
    // A thumbnail decodes at most 480 pixels wide: a fraction of the work of
    // a full 720p or 1080p frame, so many channels stay live on one page.
    const player = new FH.Player(canvas, name, { credit: 1, maxWidth: 480 });
    if (!document.hidden) player.start();
    cards.set(name, { el: card, player, info, nolive });
  }

  function removeCard(name) {
    const c = cards.get(name);
    c.player.stop('closed');
    c.el.remove();
    cards.delete(name);
  }

  function fmtAge(ms) {
    if (ms < 0) return '–';
    return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s';
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
      const ps = c.player.stats();
      let info = ch.width + '×' + ch.height + '  ·  ' + ch.fps.toFixed(1) + ' fps  ·  age ' +
        fmtAge(ps.drawn ? ps.ageP50 : ch.last_frame_age_ms) + '  ·  ' + ch.subscribers +
        (ch.subscribers === 1 ? ' viewer' : ' viewers');
      if (ps.bad) info += '  ·  ' + ps.bad + (ps.bad === 1 ? ' bad frame' : ' bad frames') + ' skipped';
      c.info.textContent = info;
      c.nolive.hidden = ch.live && !ps.stale;
      c.el.classList.toggle('offline', !ch.live);
      c.el.classList.toggle('event', ps.events.length > 0);
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
  window.framehubGrid = {
    channels: () => Array.from(cards.keys()),
    stats: () => Object.fromEntries(Array.from(cards, ([n, c]) => [n, c.player.stats()])),
  };
  FH.loadLimits(); // fetched alongside the channel list; players wait for it before subscribing
  refresh();
  setInterval(refresh, 1500);
})();
