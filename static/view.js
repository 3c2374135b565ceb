// The channel page: one channel large on a canvas, with its stats.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const channel = decodeURIComponent(location.pathname.replace(/^\/view\//, ''));
  if (!FH.validChannelName(channel)) {
    $('name').textContent = 'invalid channel name';
    return;
  }
  document.title = channel + ' · framehub';
  $('name').textContent = channel;
  const params = new URLSearchParams(location.search);
  const delayMs = Number(params.get('test-delay-ms')) || 0; // test hook: a slow decoder
  // Test hook: how long a decoder worker may stay silent before it is replaced.
  const decodeTimeoutMs = Number(params.get('test-decode-timeout-ms')) || undefined;

  // Which picture: /view/cam?rendition=320 draws that rendition,
  // ?max-width=W the one that fits W pixels (the narrowest at least that
  // wide, else the widest); otherwise the player adapts: it starts with
  // the rendition that fits the canvas in device pixels and steps down when
  // the link or this page cannot keep up, back up when they can
  // (FH.Adapter, adapt.js).
  const asked = params.get(FH.QUERY_RENDITION) || '';
  const rendition = asked === 'main' || FH.parseMaxWidth(asked) ? asked : '';
  const maxWidth = FH.parseMaxWidth(params.get(FH.QUERY_MAX_WIDTH)) || 0;
  const shown = () => Math.round(($('canvas').clientWidth || 640) * (window.devicePixelRatio || 1));
  const adaptive = !rendition && !maxWidth;

  const player = new FH.Player($('canvas'), channel, {
    delayMs,
    decodeTimeoutMs,
    rendition,
    askWidth: maxWidth || (adaptive ? shown() : 0),
    adaptive,
    onChange: (s) => render(),
  });
  if (adaptive) new ResizeObserver(() => player.fit(shown())).observe($('canvas'));
  // The hub's recent events of this channel, each with its snapshot.
  const feed = new FH.EventFeed(channel, () => FH.renderEvents($('events'), feed.events(channel), 20));
  window.framehub = { player, feed }; // for tests and the curious

  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  // render shows the player's state in the header, by the same rule as the
  // "no live video" mark on the canvas, and its stats under the picture,
  // with the frames it had to skip and why.
  function render() {
    const s = player.stats();
    let key = s.state;
    let state = s.state;
    if (s.state === 'reconnecting') state = 'reconnecting in ' + (s.retryInMs / 1000).toFixed(1) + ' s';
    else if (s.stale && (s.state === 'live' || s.state === 'waiting')) {
      key = 'stale';
      state = 'no live video';
    } else if (s.state === 'waiting') state = 'connected, waiting for frames';
    if (s.bad) state += ' · ' + plural(s.bad, 'bad frame', 'bad frames') + ' skipped';
    $('state').textContent = state;
    $('state').dataset.state = key;
    const parts = [];
    if (s.drawn > 0) {
      parts.push(s.width + '×' + s.height + ' ' + s.codec, 'rendition ' + s.rendition + (s.adapt ? ' (auto)' : ''), s.fps + ' fps',
        'age ' + Math.round(s.ageP50) + ' ms (p99 ' + Math.round(s.ageP99) + ')', '#' + s.lastSeq, 'skipped ' + s.skipped);
    }
    if (s.bad) parts.push('bad frames ' + s.bad);
    if (s.badMeta) parts.push('bad metadata ' + s.badMeta);
    $('stats').textContent = parts.join('  ·  ');
    $('problem').textContent = s.problem ? 'last problem: ' + s.problem : '';
    const nolive = $('nolive');
    nolive.hidden = !s.stale;
    if (s.stale) nolive.textContent = 'no live video · last frame ' + (s.lastFrameAgeMs / 1000).toFixed(0) + ' s ago';
    $('labels').textContent = s.labels.length ? 'boxes: ' + s.labels.join(', ') : '';
    $('adapt').textContent = s.adapt && s.adapt.reason ? 'rendition ' + s.rendition + ': ' + s.adapt.reason : '';
    $('stage').classList.toggle('event', s.events.length > 0 || feed.active(channel));
    $('events-now').textContent = s.events.length ? 'events: ' + s.events.join(', ') : '';
  }
  setInterval(render, 250);

  // Pause the subscription while the tab is hidden.
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) player.stop('paused');
    else player.start();
    render();
  });
  // The hub's limits (no token needed): the player waits for them before
  // it subscribes. Meanwhile, ask for a view token first if the hub needs
  // one for this channel (401 or 403 on the snapshot; 404 only means no
  // frame yet).
  FH.loadLimits();
  (async () => {
    try {
      await FH.auth.fetchWithToken('/channels/' + channel + '/snapshot.jpg', { method: 'HEAD' });
    } catch (e) { /* hub unreachable: the player retries and says so */ }
    if (!document.hidden) player.start();
    feed.start();
  })();

  $('fullscreen').addEventListener('click', () => {
    const el = $('stage');
    if (document.fullscreenElement) document.exitFullscreen();
    else if (el.requestFullscreen) el.requestFullscreen();
  });
  $('save').addEventListener('click', () => {
    const s = player.stats();
    if (!s.drawn) return;
    $('canvas').toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = channel + '-' + s.lastSeq + '.jpg';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }, 'image/jpeg', 0.92);
  });
})();
