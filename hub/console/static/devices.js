/* cityhub console: device status by site. Cameras as a grid (health, last event, a placeholder where
   there is no snapshot); UPS and server-room equipment as panels with last values and SVG sparklines.
   Reads GET /devices, and, where the hub has them, /sites, /devices/{site}/{device}/values and .../history:
   a missing endpoint leaves its part of the panel saying so, never breaks the page. */
"use strict";

window.CityhubDevices = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 30000;
  // The points worth a sparkline, by kind; other kinds show their first numeric values.
  const SPARK_POINTS = {
    ups: ["battery.charge", "ups.load", "input.voltage"],
    climate: ["climate.supply_air_temperature", "climate.return_air_humidity"],
    environment_sensor: ["environment.temperature", "environment.humidity"],
    energy_meter: ["meter.active_power"],
  };
  const PANEL_KINDS = new Set(["ups", "climate", "environment_sensor", "energy_meter", "gas_suppression", "edge_agent"]);
  let ctx = null;
  let timer = null;
  let devices = [];
  let siteNames = {};
  const details = new Map(); // "site/device" -> {values, history, missing}

  const el = (tag, className, text) => {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  };

  // GET .../values: {values: [{point, value, unit, quality, ts_ms}]}; GET .../history: {points: [{ts_ms, mean, ...}]}.
  function normaliseValues(answer) {
    return ((answer && answer.values) || []).map((v) => ({ point: v.point, value: v.value, unit: v.unit || "", ts: v.ts_ms }));
  }

  function normaliseHistory(answer) {
    return ((answer && answer.points) || []).map((p) => Number(p.mean)).filter((v) => Number.isFinite(v));
  }

  // Every page of a list endpoint ({items, next_offset}); a city has more devices than one page holds.
  async function allPages(path) {
    const items = [];
    let offset = 0;
    while (offset !== null && offset !== undefined) {
      const answer = await ctx.api(`${path}${path.includes("?") ? "&" : "?"}limit=1000&offset=${offset}`);
      items.push(...answer.items);
      offset = answer.next_offset;
    }
    return items;
  }

  function sparkline(values) {
    const width = 120;
    const height = 28;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    if (values.length < 2) return svg;
    const low = Math.min(...values);
    const span = Math.max(...values) - low || 1;
    const points = values.map((v, i) => `${((i / (values.length - 1)) * width).toFixed(1)},${(height - 2 - ((v - low) / span) * (height - 4)).toFixed(1)}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    return svg;
  }

  function placeholder() {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "snapshot placeholder");
    svg.setAttribute("viewBox", "0 0 160 90");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", ctx.t("devices.no_snapshot"));
    const body = document.createElementNS(SVG, "path");
    body.setAttribute("d", "M55 32h38l8-8h10v42H55z M111 38l16-9v32l-16-9z");
    svg.append(body);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "80");
    label.setAttribute("y", "84");
    label.textContent = ctx.t("devices.no_snapshot");
    svg.append(label);
    return svg;
  }

  function lastEvent(device) {
    let latest = null;
    for (const alert of ctx.alerts().values()) {
      if (alert.site === device.site && alert.device === device.device && (!latest || alert.updated_ms > latest.updated_ms)) latest = alert;
    }
    return latest;
  }

  function health(device) {
    const badge = el("span", `health ${device.state}`, ctx.t(`devices.state.${device.state}`));
    badge.title = new Date(device.since_ms).toLocaleString(document.documentElement.lang);
    return badge;
  }

  function cameraTile(device) {
    const tile = el("figure", `camera ${device.state}`);
    tile.dataset.device = `${device.site}/${device.device}`;
    tile.append(placeholder());
    const caption = el("figcaption");
    caption.append(el("strong", null, device.device), health(device));
    const event = lastEvent(device);
    const text = event ? `${ctx.t(`state.${event.state}`)}: ${event.summary}` : ctx.t("devices.no_event");
    caption.append(el("span", "last-event", `${ctx.t("devices.last_event")}: ${text}`));
    tile.append(caption);
    return tile;
  }

  function devicePanel(device) {
    const panel = el("article", `device ${device.kind}`);
    panel.dataset.device = `${device.site}/${device.device}`;
    const head = el("header");
    head.append(el("strong", null, device.device), el("span", "kind", ctx.t(`kind.${device.kind}`)), health(device));
    panel.append(head);
    const known = details.get(panel.dataset.device);
    if (!known || known.missing) {
      panel.append(el("p", "muted", ctx.t(known ? "devices.values_unavailable" : "devices.loading")));
      return panel;
    }
    const table = el("table", "values");
    for (const v of known.values) {
      const row = table.insertRow();
      row.insertCell().textContent = v.point;
      row.insertCell().textContent = `${typeof v.value === "number" ? Number(v.value.toFixed(2)) : v.value} ${v.unit}`.trim();
      const spark = row.insertCell();
      if (known.history[v.point]) spark.append(sparkline(known.history[v.point]));
    }
    panel.append(table);
    return panel;
  }

  function render() {
    if (!ctx) return;
    const container = document.querySelector("#sites");
    container.replaceChildren();
    if (!devices.length) {
      container.append(el("p", "muted", ctx.t("devices.none")));
      return;
    }
    const bySite = new Map();
    for (const device of devices) {
      if (!bySite.has(device.site)) bySite.set(device.site, []);
      bySite.get(device.site).push(device);
    }
    for (const [site, members] of bySite) {
      const section = el("section", "site");
      section.dataset.site = site;
      section.append(el("h3", null, siteNames[site] || site));
      const cameras = members.filter((d) => d.kind === "camera");
      if (cameras.length) {
        const grid = el("div", "camera-grid");
        grid.append(...cameras.map(cameraTile));
        section.append(grid);
      }
      const others = members.filter((d) => d.kind !== "camera");
      if (others.length) {
        const panels = el("div", "device-panels");
        panels.append(...others.map(devicePanel));
        section.append(panels);
      }
      container.append(section);
    }
  }

  async function loadDetails(device) {
    const key = `${device.site}/${device.device}`;
    const path = `/devices/${encodeURIComponent(device.site)}/${encodeURIComponent(device.device)}`;
    try {
      const values = normaliseValues(await ctx.api(`${path}/values`));
      const wanted = SPARK_POINTS[device.kind] || values.filter((v) => typeof v.value === "number").slice(0, 2).map((v) => v.point);
      const history = {};
      const to = new Date();
      const from = new Date(to.getTime() - 3600 * 1000);
      await Promise.all(wanted.filter((p) => values.some((v) => v.point === p)).map(async (point) => {
        const query = new URLSearchParams({ point, from: from.toISOString(), to: to.toISOString(), step: "60s" });
        try {
          history[point] = normaliseHistory(await ctx.api(`${path}/history?${query}`));
        } catch (err) {
          // no history on this hub (yet): the values alone
        }
      }));
      details.set(key, { values, history, missing: false });
    } catch (err) {
      details.set(key, { values: [], history: {}, missing: true });
    }
  }

  async function refresh() {
    try {
      devices = await allPages("/devices");
    } catch (err) {
      devices = [];
    }
    try {
      const sites = await allPages("/sites");
      siteNames = Object.fromEntries(sites.map((s) => [s.site, s.name || s.site]));
    } catch (err) {
      siteNames = {}; // no /sites on this hub: sites by their ids
    }
    render();
    await Promise.all(devices.filter((d) => PANEL_KINDS.has(d.kind)).map(loadDetails));
    render();
  }

  let pendingRefresh = null;

  // An alert names a device: a camera's tile shows it as its last event; an unknown device means the list is old.
  function touch(site, device) {
    if (!ctx) return;
    const known = devices.find((d) => d.site === site && d.device === device);
    if (known && known.kind === "camera") render();
    if (!known && !pendingRefresh) pendingRefresh = setTimeout(() => { pendingRefresh = null; refresh(); }, 2000);
  }

  function start(context) {
    ctx = context;
    stop();
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    details.clear();
    devices = [];
  }

  return { start, stop, render, touch };
})();
