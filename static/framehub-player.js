// <framehub-player hub="https://camhub.lan:8080" channel="door">: a live
// channel on any web page, without an iframe. The page loads this script
// from the hub (<script src="https://camhub.lan:8080/static/framehub-player.js">),
// which loads the hub's protocol and player scripts next to it and defines
// the element. The hub lets a page on another origin watch only when its
// --allowed-origins names that origin (WebSocket and API requests from
// others get 403).
//
// Attributes:
//   hub        the hub's http or https URL (default: this page's origin)
//   channel    the channel to show
//   token      a view token, when the hub needs one. The element reads it
//              once, removes the attribute (so it does not stay in the
//              DOM for selectors, serialisation or later scripts), and uses
//              it only with the hub and channel it was given with: change
//              either and the token is dropped; give it again with them.
//              It goes to the hub as the page sends it (a WebSocket
//              subprotocol, an Authorization header), never in a URL.
//   rendition  "auto" (default): the rendition that fits the element, or a
//              smaller one when the link or the page cannot keep up (an
//              adaptive player: FH.Adapter); or a rendition's name
//              ("main", "320") to draw that one always
//
// The element never asks the user for a token, and reads none from
// storage: a token typed into another site's page is that site's. It has
// no property or method that returns its token. The page's own scripts
// share the element's JavaScript realm and so can see what it sends; give
// an element a short-lived view token for its one channel (POST
// /api/token, or `framehub token`).
//
// Methods: stats() returns the player's figures (FH.Player.stats) or null.
'use strict';
(function () {
  if (customElements.get('framehub-player')) return;
  const script = document.currentScript;
  const base = script && script.src ? new URL('.', script.src).href : new URL('/static/', location.href).href;
  const DIAGNOSE_MS = 3000; // not drawing this long after starting: find out why, and say so

  // load adds one of the hub's scripts to the page; dynamically added
  // scripts with async false run in the order they were added.
  function load(file) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = base + file;
      s.async = false;
      s.onload = resolve;
      s.onerror = () => reject(new Error('cannot load ' + s.src));
      document.head.appendChild(s);
    });
  }
  const FHready = self.FH && self.FH.Player && self.FH.Adapter ? Promise.resolve()
    : Promise.all(['protocol.js', 'events.js', 'adapt.js', 'player.js'].map(load));

  const CSS = ':host { display: block; position: relative; aspect-ratio: 16 / 9; background: #000; overflow: hidden; contain: content; }' +
    ' canvas { display: block; width: 100%; height: 100%; object-fit: contain; }' +
    ' .status { position: absolute; left: 0; right: 0; bottom: 0; padding: 0.2em 0.5em; font: 12px/1.4 system-ui, sans-serif;' +
    ' color: #fff; background: rgba(0, 0, 0, 0.6); }' +
    ' .status.problem { background: rgba(160, 0, 0, 0.8); top: 40%; bottom: auto; text-align: center; font-size: 14px; }' +
    ' [hidden] { display: none !important; }';

  function b64url(s) {
    let bin = '';
    for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  class FramehubPlayer extends HTMLElement {
    static get observedAttributes() { return ['hub', 'channel', 'token', 'rendition']; }

    #token = '';
    #tokenFor = null; // the hub and channel the token was first used with
    #player = null;
    #canvas;
    #status;
    #ro;
    #timer = 0;
    #diagnosed = false;
    #started = 0;
    #gen = 0; // restarts: only the latest one starts a player

    constructor() {
      super();
      // Open: the page can style and read it, as it could anyway (it shares
      // the element's realm); the shadow tree keeps the page's CSS out.
      const root = this.attachShadow({ mode: 'open' });
      // A constructed stylesheet: the embedding page's CSP need not allow
      // inline styles.
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
      this.#canvas = document.createElement('canvas');
      this.#canvas.width = 640;
      this.#canvas.height = 360;
      this.#status = document.createElement('div');
      this.#status.className = 'status';
      root.append(this.#canvas, this.#status);
      this.#ro = new ResizeObserver(() => this.#fit());
    }

    connectedCallback() {
      this.#takeToken();
      this.#ro.observe(this);
      this.#restart();
    }

    disconnectedCallback() {
      this.#ro.disconnect();
      this.#stop();
    }

    attributeChangedCallback(name, old, value) {
      if (name === 'token') {
        if (value !== null) {
          this.#takeToken();
          if (this.isConnected) this.#restart();
        }
        return;
      }
      if (old !== value && this.isConnected) this.#restart();
    }

    // stats returns what the player measures, or null before it plays.
    stats() {
      return this.#player ? this.#player.stats() : null;
    }

    #takeToken() {
      const t = this.getAttribute('token');
      if (t === null) return;
      this.removeAttribute('token');
      this.#token = t.trim();
      this.#tokenFor = null;
    }

    #say(text, problem) {
      this.#status.textContent = text;
      this.#status.classList.toggle('problem', !!problem);
      this.#status.hidden = !text;
    }

    #stop() {
      clearInterval(this.#timer);
      this.#timer = 0;
      if (this.#player) this.#player.stop('closed');
      this.#player = null;
    }

    async #restart() {
      this.#stop();
      const gen = ++this.#gen;
      try {
        await FHready;
      } catch (e) {
        this.#say('framehub: ' + (e && e.message ? e.message : String(e)), true);
        return;
      }
      if (gen !== this.#gen || !this.isConnected) return;
      const channel = this.getAttribute('channel') || '';
      let origin;
      try {
        origin = FH.hubOrigin(this.getAttribute('hub') || '');
      } catch (e) {
        this.#say('framehub: ' + e.message, true);
        return;
      }
      if (!FH.validChannelName(channel)) {
        this.#say('framehub: invalid channel name', true);
        return;
      }
      // The token stays with the hub and channel it was first used with.
      const key = origin + ' ' + channel;
      if (this.#token && this.#tokenFor === null) this.#tokenFor = key;
      if (this.#token && this.#tokenFor !== key) {
        this.#token = '';
        this.#tokenFor = null;
      }
      const token = this.#token;
      const want = this.getAttribute('rendition') || 'auto';
      if (want !== 'auto' && !/^(main|[1-9][0-9]{0,4})$/.test(want)) {
        this.#say('framehub: rendition must be "auto", "main" or a width', true);
        return;
      }
      const width = this.#width();
      this.#player = new FH.Player(this.#canvas, channel, {
        hub: origin,
        protocols: () => (token ? [FH.SUBPROTOCOL, FH.SUBPROTOCOL_AUTH_PREFIX + b64url(token)] : [FH.SUBPROTOCOL]),
        headers: () => (token ? { Authorization: 'Bearer ' + token } : {}),
        maxWidth: width,
        askWidth: want === 'auto' ? width : 0,
        rendition: want === 'auto' ? '' : want,
        adaptive: want === 'auto',
      });
      this.#diagnosed = false;
      this.#started = performance.now();
      this.#player.start();
      this.#timer = setInterval(() => this.#render(origin, channel, token), 250);
      this.#render(origin, channel, token);
    }

    #width() {
      return Math.max(64, Math.round((this.clientWidth || 640) * (window.devicePixelRatio || 1)));
    }

    #fit() {
      if (this.#player) this.#player.fit(this.#width(), true);
    }

    #render(origin, channel, token) {
      const p = this.#player;
      if (!p) return;
      const s = p.stats();
      if (s.drawn > 0 && !s.stale) {
        const parts = [channel, s.width + '×' + s.height];
        if (s.rendition && s.rendition !== 'main') parts.push('rendition ' + s.rendition);
        parts.push(s.drawnFPS.toFixed(1) + ' fps', 'age ' + Math.max(0, s.recentAgeMs) + ' ms');
        this.#say(parts.join(' · '), false);
        return;
      }
      if (s.stale) {
        this.#say('no live video', true);
        return;
      }
      if (!this.#diagnosed && performance.now() - this.#started > DIAGNOSE_MS) {
        this.#diagnosed = true;
        this.#diagnose(origin, channel, token);
      }
      if (!this.#diagnosed) this.#say(s.state === 'reconnecting' ? 'connecting…' : s.state === 'waiting' ? 'waiting for frames' : 'connecting…', false);
    }

    // diagnose finds out why nothing is drawn, from what the hub answers
    // this page: nothing at all (unreachable, or this origin is not
    // allowed: the browser cannot tell the two apart), 401/403 (a view
    // token is needed, or this one does not grant the channel).
    async #diagnose(origin, channel, token) {
      let text = 'waiting for frames';
      let problem = false;
      try {
        const r = await fetch(origin + '/api/channels', {
          cache: 'no-store', credentials: 'omit', headers: token ? { Authorization: 'Bearer ' + token } : {},
        });
        if (r.status === 401) {
          text = token ? 'the hub refused this view token' : 'this channel needs a view token (the token attribute)';
          problem = true;
        } else if (r.status === 403) {
          text = 'this view token does not grant channel ' + channel;
          problem = true;
        } else if (r.ok) {
          const list = await r.json();
          if (!Array.isArray(list) || !list.some((c) => c && c.name === channel)) {
            text = 'channel ' + channel + ' is not live' + (token ? ', or this view token does not grant it' : '');
          }
        }
      } catch (e) {
        text = 'cannot reach the hub, or it does not allow this page\'s origin (its --allowed-origins)';
        problem = true;
      }
      const p = this.#player;
      if (p && !(p.stats().drawn > 0)) this.#say(text, problem);
    }
  }

  customElements.define('framehub-player', FramehubPlayer);
})();
