// Access tokens for the page. When the hub needs a view token, the page
// asks for it once and keeps it in sessionStorage (this tab only, gone
// when the tab closes). It goes to the hub as an Authorization header on
// fetch and as a WebSocket subprotocol value, since a browser cannot set
// headers on a WebSocket; never in a URL.
'use strict';
(function (root) {
  const KEY = 'framehub.token';
  const FH = root.FH || (root.FH = {});

  function get() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
  }
  function set(t) {
    try { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); } catch (e) { /* storage off */ }
  }

  function b64url(s) {
    let bin = '';
    for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // headers for fetch: Authorization when there is a token.
  function headers() {
    const t = get();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  // protocols for new WebSocket(url, protocols): the hub picks "framehub"
  // and never echoes the token back.
  function protocols() {
    const t = get();
    return t ? [FH.SUBPROTOCOL, FH.SUBPROTOCOL_AUTH_PREFIX + b64url(t)] : [FH.SUBPROTOCOL];
  }

  let asking = null;

  // ask shows a form for the token and resolves once one is entered. Every
  // string goes in as text, never as HTML.
  function ask(message) {
    if (asking) return asking;
    asking = new Promise((resolve) => {
      const form = document.createElement('form');
      form.id = 'auth';
      form.className = 'auth';
      const p = document.createElement('p');
      p.textContent = message;
      const input = document.createElement('input');
      input.type = 'password';
      input.id = 'auth-token';
      input.autocomplete = 'off';
      input.placeholder = 'view token';
      const btn = document.createElement('button');
      btn.type = 'submit';
      btn.textContent = 'Watch';
      form.append(p, input, btn);
      document.body.prepend(form);
      input.focus();
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const t = input.value.trim();
        if (!t) return;
        set(t);
        form.remove();
        asking = null;
        resolve(t);
      });
    });
    return asking;
  }

  // fetchWithToken fetches url with the token, asking for one (again) as
  // long as the hub answers 401 or 403.
  async function fetchWithToken(url, init) {
    for (;;) {
      const resp = await fetch(url, Object.assign({ cache: 'no-store' }, init || {}, { headers: headers() }));
      if (resp.status !== 401 && resp.status !== 403) return resp;
      const had = get();
      set('');
      await ask(had ? 'That token was refused (' + resp.status + '). Enter a view token:'
        : 'This hub needs a view token to watch. Enter it:');
    }
  }

  FH.auth = { get, set, headers, protocols, ask, fetchWithToken };
})(typeof window !== 'undefined' ? window : globalThis);
