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
  // drawn as canvas text (never HTML). It returns their texts.
  function drawEvents(g, canvas, events) {
    const active = (events || []).filter((e) => !e.end);
    if (!active.length) return [];
    const texts = active.map(eventText);
    const w = canvas.width;
    const h = canvas.height;
    const px = canvas.clientWidth > 0 ? w / canvas.clientWidth : 1; // canvas pixels per CSS pixel
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
