// A model of an adaptive player on a link, for the adaptive controller's
// test (adapt_test.go): a camera at cfg.fps, the hub's newest-frame
// mailbox with credit (window cfg.credit), a link whose capacity changes
// by phase, a decoder whose time grows with the picture's area,
// requestAnimationFrame at 60 Hz, and FH.Adapter (adapt.js) choosing, fed
// through FH.noteArrival (player.js) exactly as the player feeds it.
// Time is simulated, 1 ms a step. simulate returns the switches and every
// draw.
'use strict';
function simulate(cfg) {
  const period = 1000 / cfg.fps;
  const byName = new Map(cfg.renditions.map((r) => [r.name, r]));
  const adapter = new FH.Adapter();
  adapter.setRenditions(cfg.renditions.map((r) => ({
    name: r.name, live: true, width: r.width, height: r.height, fps: cfg.fps, bitrate_bps: r.bytes * 8 * cfg.fps,
  })));
  const timing = { openedAt: 0, credit: cfg.credit, arrivals: [], decodes: [], draws: [], acks: [] };
  const trim = (list, now) => { while (list.length && now - list[0].at > 3000) list.shift(); };
  let want = cfg.start; // the rendition the hub sends
  let latest = 0; // newest captured sequence number
  let lastSent = 0;
  let inflight = []; // sequence numbers sent, not yet acknowledged
  const link = []; // FIFO: {kind, bits, seq, rendition, bytes, captureMs, name, start}
  let arrived = 0;
  let decoding = null; // {f, end}
  let pending = null;
  let ready = null;
  const switches = [];
  const draws = [];
  let probing = false;
  const capacity = (t) => cfg.phases.find((p) => t < p.untilMs).bps;
  const decodeMs = (r) => cfg.decodeBaseMs + (cfg.decodeMsPerMpx * r.width * r.height) / 1e6;
  const rafMs = 1000 / 60;
  let nextRaf = rafMs;
  let nextTick = 500;
  for (let t = 0; t < cfg.durationMs; t++) {
    // The camera.
    while ((latest + 1) * period <= t) latest++;
    // The hub: the newest frame, when credit allows.
    if (latest > lastSent && inflight.length < cfg.credit) {
      const r = byName.get(want);
      link.push({ kind: 'frame', bits: r.bytes * 8, seq: latest, rendition: r.width === cfg.renditions[0].width ? 0 : r.width,
        bytes: r.bytes, captureMs: latest * period, name: r.name });
      inflight.push(latest);
      lastSent = latest;
    }
    // The link.
    let budget = capacity(t) / 1000;
    while (budget > 0 && link.length) {
      const head = link[0];
      const used = Math.min(budget, head.bits);
      head.bits -= used;
      budget -= used;
      if (head.bits > 0) break;
      link.shift();
      if (head.kind === 'probe') {
        probing = false;
        adapter.probed(t + 1, head.name, head.bytes, head.start, t + 1);
        continue;
      }
      // The page: a frame arrives.
      const n = ++arrived;
      FH.noteArrival(timing, n, t + 1, head.bytes, head.seq, head.captureMs, head.rendition);
      const f = Object.assign({ n }, head);
      if (decoding) pending = f;
      else decoding = { f, start: t + 1, end: t + 1 + decodeMs(byName.get(f.name)) };
    }
    // The decoder.
    if (decoding && t >= decoding.end) {
      timing.decodes.push({ at: t, ms: decoding.end - decoding.start });
      trim(timing.decodes, t);
      ready = { f: decoding.f, at: t };
      decoding = null;
      if (pending) {
        decoding = { f: pending, start: t, end: t + decodeMs(byName.get(pending.name)) };
        pending = null;
      }
    }
    // requestAnimationFrame: draw, then acknowledge (cumulatively).
    if (t >= nextRaf) {
      nextRaf += rafMs;
      if (ready) {
        const f = ready.f;
        const age = t - f.captureMs;
        timing.draws.push({ at: t, wait: t - ready.at, age, rendition: f.rendition });
        trim(timing.draws, t);
        draws.push({ t, name: f.name, age });
        timing.acks.push({ at: t, n: f.n });
        trim(timing.acks, t);
        inflight = inflight.filter((s) => s > f.seq);
        ready = null;
      }
    }
    // The player asks the adapter twice a second.
    if (t >= nextTick) {
      nextTick += FH.ADAPT_TICK_MS;
      const a = adapter.tick(t, timing);
      if (a && a.op === 'switch') {
        switches.push({ t, to: a.to, why: a.why });
        want = a.to;
        adapter.switched(t, a.to, a.up);
      } else if (a && a.op === 'probe' && !probing) {
        const r = byName.get(a.name);
        probing = true;
        link.push({ kind: 'probe', bits: r.bytes * 8, bytes: r.bytes, name: r.name, start: t });
      }
    }
  }
  return { switches, draws, stats: adapter.stats() };
}
