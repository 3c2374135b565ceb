// framehub events, browser side: reading the "events" of a frame's metadata
// by the rules Go's protocol.ParseEvents and the Python client's
// frame_events share (protocol/doc.go; every reader is tested against the
// cases in protocol/testdata/events.json), and marking the events going on
// over the picture.
'use strict';
(function (root) {
  const MAX_EVENTS = 32; // protocol.MaxEvents
  const MAX_EVENT_TIME = 9e9; // protocol.MaxEventTime, Unix seconds
  const MAX_LABEL = 64; // protocol.MaxLabelLen, in characters (code points)
  const EVENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
  const EVENT_COLOR = '#e33';
  const MAX_EVENT_LINES = 4; // events listed on the picture; the rest counted

  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  const isTime = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= MAX_EVENT_TIME;

  // frameEvents returns the events of a frame's metadata (already known to
  // be a JSON object, or null), each {id, label, zone, start, end, score,
  // best} with zone '' for the whole picture, end 0 while it lasts and
  // score 0 for none, and a problem ('' when nothing was left out) and the
  // count of entries left out. It never throws.
  function frameEvents(meta) {
    const out = { events: [], problem: '', dropped: 0 };
    if (meta === null || typeof meta !== 'object' || !own(meta, 'events')) return out;
    const list = meta.events;
    const bad = (n, why) => {
      if (!out.problem) out.problem = why;
      out.dropped += n;
    };
    if (!Array.isArray(list)) {
      bad(0, '"events" is not a list');
      return out;
    }
    if (list.length > MAX_EVENTS) bad(list.length - MAX_EVENTS, list.length + ' events, reading the first ' + MAX_EVENTS);
    const ids = new Set();
    for (let i = 0; i < Math.min(list.length, MAX_EVENTS); i++) {
      const e = list[i];
      const why = entryProblem(e, ids);
      if (why) {
        bad(1, 'event ' + i + ': ' + why);
        continue;
      }
      ids.add(e.id);
      const ev = {
        id: e.id,
        label: Array.from(e.label).slice(0, MAX_LABEL).join(''),
        zone: own(e, 'zone') && e.zone !== null ? e.zone : '',
        start: e.start,
        end: own(e, 'end') && e.end !== null ? e.end : 0,
        score: 0,
        best: own(e, 'best') && e.best === true,
      };
      if (own(e, 'score')) {
        if (typeof e.score === 'number' && Number.isFinite(e.score) && e.score >= 0 && e.score <= 1) ev.score = e.score;
        else bad(0, 'event ' + i + ': score is not a number from 0 to 1');
      }
      out.events.push(ev);
    }
    return out;
  }

  // entryProblem says why an entry is left out, or ''.
  function entryProblem(e, ids) {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'not an object';
    if (!own(e, 'id') || typeof e.id !== 'string' || !EVENT_ID.test(e.id)) return "id is not 1 to 64 letters, digits, '_' or '-'";
    if (!own(e, 'label') || typeof e.label !== 'string' || e.label === '') return 'label is not a non-empty string';
    if (own(e, 'zone') && e.zone !== null && (typeof e.zone !== 'string' || (e.zone !== '' && !EVENT_ID.test(e.zone)))) {
      return 'zone is not a name';
    }
    if (!own(e, 'start') || !isTime(e.start)) return 'start is not a time';
    if (own(e, 'end') && e.end !== null && !(isTime(e.end) && e.end >= e.start)) return 'end is not a time from start on';
    if (ids.has(e.id)) return "its id is an earlier event's";
    return '';
  }

  // eventText names an event: "person in door 0.91".
  function eventText(e) {
    let t = e.label;
    if (e.zone) t += ' in ' + e.zone;
    if (e.score > 0) t += ' ' + e.score.toFixed(2);
    return t;
  }

  // drawEvents marks the events going on over the picture in canvas g:
  // a red frame around it, and one line each in its bottom-left corner,
  // drawn as canvas text (never HTML). It returns their texts. px is the
  // canvas pixels per CSS pixel when the canvas cannot measure it (an
  // OffscreenCanvas).
  function drawEvents(g, canvas, events, px) {
    const active = (events || []).filter((e) => !e.end);
    if (!active.length) return [];
    const texts = active.map(eventText);
    const w = canvas.width;
    const h = canvas.height;
    if (!(px > 0)) px = canvas.clientWidth > 0 ? w / canvas.clientWidth : 1; // canvas pixels per CSS pixel
    const lw = Math.max(3, Math.round(3 * px), Math.round(w / 250));
    const font = Math.max(12, Math.round(12 * px), Math.round(w / 50));
    const lines = texts.slice(0, MAX_EVENT_LINES).map((t) => '● ' + t);
    if (texts.length > lines.length) lines.push('+' + (texts.length - lines.length) + ' more');
    g.save();
    g.lineWidth = lw;
    g.strokeStyle = EVENT_COLOR;
    g.strokeRect(lw / 2, lw / 2, w - lw, h - lw);
    g.font = font + 'px sans-serif';
    g.textBaseline = 'bottom';
    let y = h - 2 * lw;
    for (let i = lines.length - 1; i >= 0; i--) {
      g.fillStyle = EVENT_COLOR;
      g.fillRect(2 * lw, y - font - lw, g.measureText(lines[i]).width + 2 * lw, font + lw);
      g.fillStyle = '#fff';
      g.fillText(lines[i], 3 * lw, y - lw / 2);
      y -= font + 2 * lw;
    }
    g.restore();
    return texts;
  }

  root.FH = Object.assign(root.FH || {}, { MAX_EVENTS, frameEvents, eventText, drawEvents });
})(self);

// The hub's events for the page: EventFeed lists them (GET /api/events),
// then follows the hub's stream of them (GET /api/events/stream, Server-
// Sent Events read with fetch, which can send the view token as a header
// where EventSource cannot), reconnecting with backoff, and listing again
// when the hub says the page missed some. renderEvents draws a channel's
// recent events, each with its best snapshot, as text and images, never
// as HTML.
(function (root) {
  const FH = root.FH;
  const PATH_EVENTS = '/api/events'; // protocol.PathEvents
  const PATH_STREAM = '/api/events/stream'; // protocol.PathEventStream
  const KEEP_PER_CHANNEL = 20; // events a page keeps of a channel
  const MAX_MESSAGE = 64 << 10; // bytes of one stream message the page reads at most
  const MAX_SNAPSHOTS = 64; // snapshot images kept as object URLs

  class EventFeed {
    // channel: one channel, or '' for every channel the page may view.
    constructor(channel, onChange) {
      this.channel = channel || '';
      this.onChange = onChange || (() => {});
      this.byChannel = new Map(); // channel -> Map(id -> info)
      this.running = false;
      this.backoff = 500;
      this.abort = null;
      this.dropped = 0; // notices the hub dropped for this page
    }

    start() {
      if (this.running) return;
      this.running = true;
      this.loop();
    }

    stop() {
      this.running = false;
      if (this.abort) this.abort.abort();
    }

    query() {
      return this.channel ? '?channel=' + encodeURIComponent(this.channel) : '';
    }

    async loop() {
      while (this.running) {
        this.abort = new AbortController();
        try {
          await this.list();
          await this.follow(this.abort.signal);
          this.backoff = 500;
        } catch (e) {
          // the hub is away, or the stream broke: try again later
        }
        if (!this.running) return;
        await new Promise((r) => setTimeout(r, this.backoff));
        this.backoff = Math.min(this.backoff * 2, 5000);
      }
    }

    async list() {
      const resp = await FH.auth.fetchWithToken(PATH_EVENTS + this.query());
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      const list = await resp.json();
      if (!Array.isArray(list)) throw new Error('not a list');
      for (const info of list) this.apply(info);
      this.onChange(this);
    }

    // follow reads the stream until it ends.
    async follow(signal) {
      const resp = await fetch(PATH_STREAM + this.query(), { headers: FH.auth.headers(), cache: 'no-store', signal });
      if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.message(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
        if (buf.length > MAX_MESSAGE) throw new Error('stream message too long');
      }
    }

    // message handles one Server-Sent Event.
    message(text) {
      let kind = 'message';
      let data = '';
      for (const line of text.split('\n')) {
        if (line.startsWith('event: ')) kind = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) return; // a comment (keep-alive)
      let info;
      try {
        info = JSON.parse(data);
      } catch (e) {
        return;
      }
      if (kind === 'dropped') {
        this.dropped += Number(info.dropped) || 0;
        this.list().catch(() => {}); // missed some: list again
        return;
      }
      if (this.apply(info)) this.onChange(this);
    }

    // apply records an event the hub sent, if it is well-formed.
    apply(info) {
      if (info === null || typeof info !== 'object' || !FH.validChannelName(info.channel) ||
          typeof info.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(info.id) || typeof info.label !== 'string') {
        return false;
      }
      let m = this.byChannel.get(info.channel);
      if (!m) this.byChannel.set(info.channel, (m = new Map()));
      m.delete(info.id); // re-inserted: the newest change last
      m.set(info.id, info);
      while (m.size > KEEP_PER_CHANNEL) m.delete(m.keys().next().value);
      return true;
    }

    // events returns a channel's events, the latest change first.
    events(channel) {
      const m = this.byChannel.get(channel);
      return m ? Array.from(m.values()).reverse() : [];
    }

    // active reports whether an event of the channel goes on.
    active(channel) {
      return this.events(channel).some((e) => e.end === null);
    }
  }

  // Snapshot images, fetched with the token (an <img> cannot send it) and
  // shown from object URLs, the oldest revoked past MAX_SNAPSHOTS.
  const snapshots = new Map(); // path (its version included) -> object URL or a pending promise
  function snapshotURL(info) {
    const key = info.snapshot;
    if (snapshots.has(key)) return snapshots.get(key);
    const p = FH.auth.fetchWithToken(info.snapshot)
      .then((r) => (r.ok ? r.blob() : null))
      .then((b) => {
        const url = b ? URL.createObjectURL(b) : '';
        snapshots.set(key, url);
        while (snapshots.size > MAX_SNAPSHOTS) {
          const [k, v] = snapshots.entries().next().value;
          if (typeof v === 'string' && v) URL.revokeObjectURL(v);
          snapshots.delete(k);
        }
        return url;
      }, () => '');
    snapshots.set(key, p);
    return p;
  }

  function fmtTime(s) {
    const d = new Date(s * 1000);
    return d.toLocaleTimeString();
  }

  // eventLine is how a listed event reads: "● person in door · 12:03:04 ·
  // 0.91 · going on" or "… · 7 s".
  function eventLine(e) {
    const parts = [FH.eventText({ label: e.label, zone: e.zone, score: e.score }), fmtTime(e.start)];
    if (e.end === null) parts.push('going on');
    else parts.push(Math.max(0, Math.round(e.end - e.start)) + ' s');
    return (e.end === null ? '● ' : '') + parts.join(' · ');
  }

  // renderEvents fills the element ul with up to max of a channel's
  // events, each an <li> with its snapshot (when the hub keeps one) and
  // its line of text.
  function renderEvents(ul, events, max) {
    const shown = events.slice(0, max);
    while (ul.children.length > shown.length) ul.lastChild.remove();
    shown.forEach((e, i) => {
      let li = ul.children[i];
      if (!li) {
        li = document.createElement('li');
        const img = document.createElement('img');
        img.alt = '';
        img.hidden = true;
        const span = document.createElement('span');
        li.append(img, span);
        ul.appendChild(li);
      }
      li.dataset.id = e.id;
      li.classList.toggle('active', e.end === null);
      li.lastChild.textContent = eventLine(e);
      const img = li.firstChild;
      if (e.snapshot && typeof e.snapshot === 'string' && e.snapshot.startsWith(PATH_EVENTS + '/')) {
        const key = e.snapshot;
        if (img.dataset.key !== key) {
          img.dataset.key = key;
          Promise.resolve(snapshotURL(e)).then((url) => {
            if (img.dataset.key === key && url) {
              img.src = url;
              img.hidden = false;
            }
          });
        }
      } else {
        img.hidden = true;
        img.removeAttribute('src');
        delete img.dataset.key;
      }
    });
  }

  root.FH = Object.assign(root.FH || {}, { EventFeed, renderEvents, eventLine });
})(self);
