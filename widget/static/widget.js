/* Interops widget v1 (widget/README.md): login (or registration, prompt=create) on the
   IdP's own origin, in a popup or,
   where popups are blocked, a full-page redirect; authorization code flow with PKCE S256
   and a checked state. No password ever enters the partner's page; no cookie of ours is
   read or needed here. */
(() => {
  "use strict";
  if (window.InteropsWidget) return;
  const IDP = new URL(document.currentScript.src).origin;
  const KEY = "interops-widget:";
  const TTL = 600000; // a redirect attempt is good for 10 minutes
  const DAY = 86400000; // a registration's: as long as its email verification link
  const TEXT = {
    fr: { button: "Se connecter", register: "Créer un compte", unavailable: "Connexion Interops indisponible sur ce site." },
    en: { button: "Sign in", register: "Create an account", unavailable: "Interops sign-in unavailable on this site." },
  };
  const CSS = ":host{display:inline-block}" +
    "button{font:inherit;cursor:pointer;padding:.6em 1.2em;border-radius:4px;" +
    "border:2px solid var(--interops-accent,var(--interops-primary,#000091));" +
    "background:var(--interops-accent,var(--interops-primary,#000091));" +
    "color:var(--interops-on-accent,var(--interops-text,#fff));vertical-align:middle}" +
    "img{height:2.5em;max-width:10em;margin-right:.5em;vertical-align:middle}" +
    "button:focus-visible{outline:3px solid var(--interops-focus,#0a76f6);outline-offset:2px}" +
    "button:disabled{cursor:default;opacity:.7}p{margin:.4em 0 0;min-height:1.2em}";

  const COLOUR = /^#[0-9a-f]{6}$/i;

  // The partner's theme (validated by the IdP, checked again here): colours only as
  // #RRGGBB custom properties, the logo only as an http(s) <img> source, the wording
  // only as text; returns the wording for `locale`, if any.
  function applyTheme(root, button, theme, locale) {
    theme = theme || {};
    for (const name of ["primary", "text"]) {
      if (COLOUR.test(theme[name])) button.style.setProperty(`--interops-${name}`, theme[name]);
    }
    const logo = root.querySelector("img");
    if (typeof theme.logo_url === "string" && /^https?:\/\//i.test(theme.logo_url)) {
      logo.alt = String(theme.name || "");
      logo.src = theme.logo_url;
      logo.hidden = false;
    }
    const wording = theme.label && theme.label[locale];
    return typeof wording === "string" ? wording : "";
  }

  const b64url = (bytes) =>
    btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (size) => b64url(crypto.getRandomValues(new Uint8Array(size)));
  const sha256 = async (text) =>
    b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
  const failure = (error, description) => ({ error, error_description: description || error });

  async function settings(clientId, locale) {
    const query = new URLSearchParams({ client_id: clientId, lang: locale });
    const answer = await fetch(`${IDP}/widget/v1/config?${query}`, { credentials: "omit" });
    if (!answer.ok) throw failure("unavailable");
    return answer.json();
  }

  // One attempt: a fresh verifier, challenge and state, and the two authorization URLs
  // (the popup's, answered on the IdP's callback page; the redirect's, to redirectUri).
  async function prepare(config, opts, locale) {
    const verifier = random(48);
    const state = random(24);
    const query = {
      response_type: "code",
      client_id: opts.clientId,
      scope: opts.scope || "openid",
      state,
      code_challenge: await sha256(verifier),
      code_challenge_method: "S256",
      ui_locales: locale,
    };
    if (opts.nonce) query.nonce = opts.nonce;
    if (opts.mode === "register") query.prompt = "create";
    const url = (redirectUri) =>
      `${config.authorization_endpoint}?${new URLSearchParams({ ...query, redirect_uri: redirectUri })}`;
    return {
      verifier,
      state,
      popupRedirect: config.redirect_uri,
      popupUrl: url(config.redirect_uri),
      pageUrl: opts.redirectUri ? url(opts.redirectUri) : null,
    };
  }

  function mount(element, opts) {
    opts = opts || {};
    if (!element || !opts.clientId) throw new TypeError("InteropsWidget.mount(element, {clientId, ...})");
    opts = { ...opts, mode: opts.mode || "login" };
    const register = opts.mode === "register";
    if (!register && opts.mode !== "login") throw new TypeError("InteropsWidget: mode 'login' or 'register'");
    const locale = opts.locale === "en" ? "en" : "fr";
    const root = element.shadowRoot || element.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${CSS}</style><img part="logo" hidden>` +
      '<button type="button" part="button" disabled></button>' +
      '<p role="status" aria-live="polite" part="status"></p>';
    const button = root.querySelector("button");
    const status = root.querySelector("p");
    button.textContent = TEXT[locale][register ? "register" : "button"];
    let config = null;
    let attempt = null;
    let pending = null;
    let popup = null;

    const say = (text) => { status.textContent = text; };
    const label = (name) => (register && config.labels[`register_${name}`]) || config.labels[name];
    const report = (kind, detail) => {
      element.dispatchEvent(new CustomEvent(`interops-${kind}`, { detail, bubbles: true, composed: true }));
      const callback = kind === "success" ? opts.onSuccess : opts.onError;
      if (typeof callback === "function") callback(detail);
    };
    const ready = async () => {
      attempt = await prepare(config, opts, locale);
      button.disabled = false;
    };
    const settle = (kind, detail, text) => {
      pending = null;
      say(text);
      report(kind, detail);
      ready();
    };

    function finish(message) {
      const done = pending;
      popup.close();
      if (message.iss !== config.issuer) return settle("error", failure("invalid_issuer"), config.labels.error);
      if (message.error) {
        const text = message.error === "registration_pending" ? config.labels.registration_pending : config.labels.error;
        return settle("error", failure(message.error, message.error_description), text);
      }
      settle("success", {
        code: message.code,
        codeVerifier: done.verifier,
        state: done.state,
        redirectUri: done.popupRedirect,
      }, label("success"));
    }

    // Only the IdP's origin, only our own popup, only our own state: anything else,
    // forged by another window or replayed from another attempt, is ignored.
    window.addEventListener("message", (event) => {
      const message = event.data;
      if (!pending || event.origin !== IDP || event.source !== popup) return;
      if (!message || message.type !== "interops-widget" || message.state !== pending.state) return;
      finish(message);
    });

    function watch(watched) {
      const timer = setInterval(() => {
        if (pending !== watched) return clearInterval(timer);
        if (!popup.closed) return;
        clearInterval(timer);
        // a message posted just before closing is still delivered first
        setTimeout(() => {
          if (pending === watched) settle("error", failure("popup_closed"), config.labels.closed);
        }, 400);
      }, 300);
    }

    function redirect(chosen) {
      const target = chosen.pageUrl && new URL(opts.redirectUri, location.href);
      if (!target || target.origin !== location.origin) {
        return settle("error", failure("popup_blocked", "no same-origin redirectUri"), config.labels.error);
      }
      const saved = {
        verifier: chosen.verifier, redirectUri: opts.redirectUri, issuer: config.issuer, at: Date.now(), ttl: register ? DAY : TTL,
      };
      sessionStorage.setItem(KEY + chosen.state, JSON.stringify(saved));
      say(config.labels.redirect);
      location.assign(chosen.pageUrl);
    }

    button.addEventListener("click", () => {
      if (!attempt || pending) return;
      const chosen = attempt;
      attempt = null;
      button.disabled = true;
      popup = window.open(chosen.popupUrl, "interops-login", "popup,width=520,height=720");
      if (!popup) return redirect(chosen);
      pending = chosen;
      say(label("busy"));
      watch(chosen);
    });

    settings(opts.clientId, locale)
      .then((answer) => {
        config = answer;
        const wording = applyTheme(root, button, config.theme, locale);
        button.textContent = (!register && wording) || label("button");
        return ready();
      })
      .catch((error) => {
        say(TEXT[locale].unavailable);
        report("error", error && error.error ? error : failure("unavailable", String(error)));
      });
    return { button, status };
  }

  // On the partner's redirectUri page, after a full-page redirect: the same result as
  // the popup's, from the response's query and this origin's sessionStorage.
  function handleCallback(opts) {
    opts = opts || {};
    const params = new URLSearchParams(location.search);
    const state = params.get("state") || "";
    const found = JSON.parse(sessionStorage.getItem(KEY + state) || "null");
    sessionStorage.removeItem(KEY + state);
    const answer = {};
    for (const name of ["code", "state", "iss", "error", "error_description"]) {
      answer[name] = params.get(name);
      params.delete(name);
    }
    const rest = params.toString();
    history.replaceState(history.state, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
    let result;
    if (!found || Date.now() - found.at > (found.ttl || TTL)) result = failure("invalid_state");
    else if (answer.iss !== found.issuer) result = failure("invalid_issuer");
    else if (answer.error) result = failure(answer.error, answer.error_description);
    else if (!answer.code) result = failure("invalid_request");
    else result = { code: answer.code, codeVerifier: found.verifier, state, redirectUri: found.redirectUri };
    const kind = result.code ? "success" : "error";
    document.dispatchEvent(new CustomEvent(`interops-${kind}`, { detail: result }));
    const callback = kind === "success" ? opts.onSuccess : opts.onError;
    if (typeof callback === "function") callback(result);
    return result;
  }

  const named = (name) => (name && typeof window[name] === "function" ? window[name] : undefined);
  function mountDeclared() {
    for (const element of document.querySelectorAll("[data-interops-widget]")) {
      if (element.shadowRoot) continue;
      const data = element.dataset;
      mount(element, {
        clientId: data.clientId,
        mode: data.mode,
        redirectUri: data.redirectUri,
        locale: data.locale,
        nonce: data.nonce,
        scope: data.scope,
        onSuccess: named(data.onSuccess),
        onError: named(data.onError),
      });
    }
  }

  window.InteropsWidget = Object.freeze({ mount, handleCallback, version: "1" });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountDeclared);
  else mountDeclared();
})();
