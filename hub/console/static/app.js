/* cityhub operator console: login, live alerts (fetch + ReadableStream over SSE), actions, languages.
   No framework and no build step; every string shown comes from i18n/<lang>.json; data is written
   with textContent only, never as HTML. docs/console.md describes the page. */
"use strict";

(() => {
  const API = "/api/v1";
  const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };
  const STATE_RANK = { firing: 0, acknowledged: 1, resolved: 2 };
  const EVENT_STATE = { firing: "firing", acknowledged: "acknowledged", resolved: "resolved" };
  const state = {
    // sessionStorage, not localStorage: the token dies with the tab, and a shared PC keeps no login.
    token: sessionStorage.getItem("cityhub.token"),
    me: null,
    alerts: new Map(),
    lastEventId: null,
    dict: {},
    lang: "en",
    audio: null,
    muted: localStorage.getItem("cityhub.muted") === "1",
    beeps: 0,
    cues: 0,
    lastCritical: null,
    stream: null,
    generation: 0,
  };
  const $ = (selector) => document.querySelector(selector);

  // -- languages ---------------------------------------------------------------------------------

  function t(key, vars = {}) {
    let text = Object.prototype.hasOwnProperty.call(state.dict, key) ? state.dict[key] : key;
    for (const [name, value] of Object.entries(vars)) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  function defaultLanguage() {
    const saved = localStorage.getItem("cityhub.lang");
    if (saved === "ro" || saved === "en") return saved;
    return (navigator.language || "en").toLowerCase().startsWith("ro") ? "ro" : "en";
  }

  async function setLanguage(lang) {
    const response = await fetch(`i18n/${lang}.json`, { signal: AbortSignal.timeout(10000) });
    state.dict = await response.json();
    state.lang = lang;
    document.documentElement.lang = lang;
    localStorage.setItem("cityhub.lang", lang);
    $("#lang").value = lang;
    document.title = t("app.title");
    for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
    renderSound();
    renderBanner();
    renderLive(state.stream !== null && state.stream.live);
    if (state.me) {
      renderWho();
      renderAlerts();
      window.CityhubDevices.render();
      window.CityhubReports.render();
    }
  }

  // -- the API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = "GET", body, form, timeoutMs = 10000 } = {}) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let payload;
    if (form) payload = new URLSearchParams(form);
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(API + path, { method, headers, body: payload, signal: AbortSignal.timeout(timeoutMs) });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401 && state.token && path !== "/auth/token") {
      logout(t("login.expired"));
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
    }
    return data;
  }

  function notify(text, isError = false) {
    const notice = $("#notice");
    notice.textContent = text;
    notice.classList.toggle("error", isError);
    notice.hidden = false;
    clearTimeout(notify.timer);
    notify.timer = setTimeout(() => { notice.hidden = true; }, 8000);
  }

  // -- login -------------------------------------------------------------------------------------

  async function login(event) {
    event.preventDefault();
    ensureAudio(); // inside the click: browsers allow sound only after a gesture
    const error = $("#login-error");
    error.textContent = "";
    $("#login-submit").disabled = true;
    try {
      const form = { username: $("#username").value.trim(), password: $("#password").value };
      const answer = await api("/auth/token", { method: "POST", form });
      state.token = answer.access_token;
      sessionStorage.setItem("cityhub.token", state.token);
      $("#password").value = "";
      await start();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? t("login.failed") : `${t("login.error")}: ${err.message}`;
    } finally {
      $("#login-submit").disabled = false;
    }
  }

  function logout(reason) {
    const token = state.token;
    state.token = null;
    state.me = null;
    state.generation += 1;
    sessionStorage.removeItem("cityhub.token");
    if (state.stream) state.stream.abort.abort();
    state.stream = null;
    state.alerts.clear();
    state.lastEventId = null;
    window.CityhubDevices.stop();
    window.CityhubReports.stop();
    $("#console-view").hidden = true;
    $("#login-view").hidden = false;
    $("#logout").hidden = true;
    $("#sound").hidden = true;
    $("#who").textContent = "";
    $("#critical-banner").hidden = true;
    renderLive(false);
    if (reason) $("#login-error").textContent = reason;
    if (token && !reason) {
      fetch(`${API}/auth/logout`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).catch(() => {});
    }
  }

  async function start() {
    state.me = await api("/me");
    $("#login-view").hidden = true;
    $("#console-view").hidden = false;
    $("#logout").hidden = false;
    $("#sound").hidden = false;
    document.body.dataset.role = state.me.role;
    renderWho();
    renderAlerts();
    runStream(state.generation);
    window.CityhubDevices.start({ api, t, alerts: () => state.alerts });
    window.CityhubReports.start({ api, t });
  }

  function renderWho() {
    const me = state.me;
    $("#who").textContent = t("app.who", { user: me.username, role: t(`role.${me.role}`), team: me.team || "—" });
  }

  const canAct = () => Boolean(state.me && state.me.permissions.includes("alerts.ack"));

  // -- the live stream ---------------------------------------------------------------------------

  function renderLive(live) {
    const element = $("#live");
    element.classList.toggle("off", !live);
    element.textContent = t(live ? "stream.live" : "stream.offline");
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function runStream(generation) {
    let backoffMs = 1000;
    while (state.token && generation === state.generation) {
      const stream = { abort: new AbortController(), live: false, heartbeatMs: 15000 };
      state.stream = stream;
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
        if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch(`${API}/alerts/stream`, { headers, signal: stream.abort.signal, cache: "no-store" });
        if (response.status === 401) return logout(t("login.expired"));
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        backoffMs = 1000;
        await readEvents(response.body, stream);
      } catch (err) {
        // A dropped line, a hub restart, a proxy timeout: reconnect below, with the last id seen.
      }
      stream.live = false;
      renderLive(false);
      if (!state.token || generation !== state.generation) return;
      await sleep(backoffMs + Math.random() * 500);
      backoffMs = Math.min(backoffMs * 2, 30000);
    }
  }

  async function readEvents(body, stream) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let watchdog = null;
    // No byte for more than two heartbeats: the line is dead even if TCP has not noticed; start again.
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => stream.abort.abort(), stream.heartbeatMs * 2.5);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (await handleBlock(block, stream) === "end") return;
        }
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }

  async function handleBlock(block, stream) {
    let type = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    const payload = JSON.parse(data.join("\n"));
    if (type === "ready") {
      stream.live = true;
      stream.heartbeatMs = payload.heartbeat_s * 1000;
      renderLive(true);
      if (payload.resync) await loadAlerts();
    } else if (type === "alert") {
      if (id) state.lastEventId = id;
      applyMessage(payload);
    } else if (type === "end") {
      if (payload.reason === "unauthenticated") logout(t("login.expired"));
      return "end";
    }
    return null;
  }

  // -- alerts ------------------------------------------------------------------------------------

  async function loadAlerts() {
    try {
      const [open, resolved] = await Promise.all([
        api("/alerts?state=firing&state=acknowledged&limit=500"),
        api("/alerts?state=resolved&limit=50"),
      ]);
      for (const alert of [...open.items, ...resolved.items]) mergeAlert(alert);
      renderAlerts();
    } catch (err) {
      notify(`${t("alerts.load_failed")}: ${err.message}`, true);
    }
  }

  function mergeAlert(alert) {
    const known = state.alerts.get(alert.id);
    // The newer of the two wins: a listing may be older than an event the stream already gave.
    if (!known || known.updated_ms <= alert.updated_ms) state.alerts.set(alert.id, { ...known, ...alert });
  }

  function applyMessage(message) {
    const known = state.alerts.get(message.alert_id);
    const newState = EVENT_STATE[message.event] || (known ? known.state : "firing");
    if (known && known.updated_ms > message.at) return;
    const alert = {
      ...known,
      id: message.alert_id, rule: message.rule, site: message.site, device: message.device, kind: message.kind,
      team: message.team, severity: message.severity, summary: message.summary, fired_ms: message.fired_at,
      updated_ms: message.at, state: newState, escalation_level: message.escalation_level,
    };
    if (message.event === "acknowledged") alert.acked_by = message.actor;
    state.alerts.set(alert.id, alert);
    const isNew = message.event === "firing" && (!known || known.state === "resolved");
    renderAlerts(isNew ? alert.id : null);
    if (isNew && message.severity === "critical") criticalCue(alert);
    window.CityhubDevices.touch(alert.site, alert.device);
  }

  function sortedAlerts() {
    const shown = [...state.alerts.values()].filter((a) => $("#show-resolved").checked || a.state !== "resolved");
    return shown.sort((a, b) =>
      (STATE_RANK[a.state] - STATE_RANK[b.state]) ||
      ((SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9)) ||
      (b.fired_ms - a.fired_ms));
  }

  function age(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return t("age.seconds", { n: s });
    if (s < 3600) return t("age.minutes", { n: Math.floor(s / 60) });
    if (s < 86400) return t("age.hours", { n: Math.floor(s / 3600) });
    return t("age.days", { n: Math.floor(s / 86400) });
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function actionButton(action, alert) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.dataset.id = alert.id;
    button.textContent = t(`actions.${action}`);
    return button;
  }

  function renderAlerts(freshId = null) {
    const body = $("#alerts tbody");
    const rows = sortedAlerts();
    body.replaceChildren();
    for (const alert of rows) {
      const row = body.insertRow();
      row.dataset.id = alert.id;
      row.dataset.rule = alert.rule;
      row.dataset.state = alert.state;
      row.className = `sev-${alert.severity} state-${alert.state}${alert.id === freshId ? " fresh" : ""}`;
      cell(row, t(`severity.${alert.severity}`), "severity");
      cell(row, t(`team.${alert.team}`) === `team.${alert.team}` ? alert.team : t(`team.${alert.team}`), "team");
      cell(row, `${alert.site}/${alert.device}`, "subject");
      cell(row, alert.summary, "summary");
      cell(row, t(`state.${alert.state}`) + (alert.acked_by ? ` (${alert.acked_by})` : ""), "state");
      const ageCell = cell(row, age(alert.fired_ms), "age");
      ageCell.dataset.since = alert.fired_ms;
      const actions = cell(row, "", "actions");
      if (!canAct()) continue; // a viewer reads, and gets no buttons at all
      if (alert.state === "firing") actions.append(actionButton("ack", alert));
      actions.append(actionButton("comment", alert));
      if (alert.state !== "resolved") actions.append(actionButton("resolve", alert));
    }
    $("#alerts-empty").hidden = rows.length > 0;
  }

  function refreshAges() {
    for (const element of document.querySelectorAll("#alerts td.age")) element.textContent = age(Number(element.dataset.since));
  }

  function askNote(title, required) {
    const dialog = $("#note-dialog");
    $("#note-title").textContent = title;
    const text = $("#note-text");
    text.value = "";
    text.required = required;
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? text.value.trim() : null), { once: true });
    });
  }

  async function act(action, id) {
    const alert = state.alerts.get(id);
    if (!alert) return;
    try {
      if (action === "ack") {
        mergeAlert(await api(`/alerts/${encodeURIComponent(id)}/ack`, { method: "POST", body: {} }));
      } else if (action === "resolve") {
        const note = await askNote(t("actions.resolve_title", { subject: `${alert.site}/${alert.device}` }), false);
        if (note === null) return;
        mergeAlert(await api(`/alerts/${encodeURIComponent(id)}/resolve`, { method: "POST", body: { comment: note || null } }));
      } else if (action === "comment") {
        const note = await askNote(t("actions.comment_title", { subject: `${alert.site}/${alert.device}` }), true);
        if (!note) return;
        await api(`/alerts/${encodeURIComponent(id)}/comment`, { method: "POST", body: { text: note } });
        notify(t("actions.comment_saved"));
      }
      renderAlerts();
    } catch (err) {
      notify(`${t("actions.failed")}: ${err.message}`, true);
    }
  }

  // -- the critical cue: a beep (WebAudio, no sound file) and a banner ---------------------------

  function ensureAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!state.audio) state.audio = new Context();
    if (state.audio.state === "suspended") state.audio.resume().catch(() => {});
  }

  function beep() {
    const context = state.audio;
    if (state.muted || !context) return;
    const now = context.currentTime;
    for (const offset of [0, 0.3, 0.6]) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.2);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(now + offset);
      oscillator.stop(now + offset + 0.22);
    }
    state.beeps += 1;
    document.body.dataset.beeps = String(state.beeps);
  }

  function criticalCue(alert) {
    state.cues += 1;
    state.lastCritical = alert;
    document.body.dataset.criticalCues = String(state.cues);
    const banner = $("#critical-banner");
    renderBanner();
    banner.hidden = false;
    banner.classList.remove("flash");
    void banner.offsetWidth; // restart the animation for a second critical alert
    banner.classList.add("flash");
    document.title = `(!) ${t("app.title")}`;
    beep();
  }

  function renderBanner() {
    const alert = state.lastCritical;
    if (!alert) return;
    $("#critical-banner").textContent = t("alerts.new_critical", { subject: `${alert.site}/${alert.device}`, summary: alert.summary });
  }

  function renderSound() {
    $("#sound").textContent = t(state.muted ? "sound.off" : "sound.on");
    $("#sound").setAttribute("aria-pressed", String(!state.muted));
  }

  // -- start -------------------------------------------------------------------------------------

  function wire() {
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", () => logout(null));
    $("#lang").addEventListener("change", (event) => setLanguage(event.target.value));
    $("#show-resolved").addEventListener("change", () => renderAlerts());
    $("#alerts tbody").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) act(button.dataset.action, button.dataset.id);
    });
    $("#critical-banner").addEventListener("click", () => {
      $("#critical-banner").hidden = true;
      document.title = t("app.title");
    });
    $("#sound").addEventListener("click", () => {
      state.muted = !state.muted;
      localStorage.setItem("cityhub.muted", state.muted ? "1" : "0");
      ensureAudio();
      renderSound();
    });
    // After a reload there was no gesture yet: the first click anywhere allows the beep again.
    document.addEventListener("pointerdown", ensureAudio, { once: true });
    setInterval(refreshAges, 5000);
  }

  async function main() {
    wire();
    await setLanguage(defaultLanguage());
    if (state.token) {
      try {
        await start();
      } catch (err) {
        logout(null);
      }
    }
    document.body.dataset.ready = "1";
  }

  main();
})();
