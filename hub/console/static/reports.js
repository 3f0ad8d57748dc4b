/* cityhub console: KPI figures of the last 7 days (GET /reports/kpi, docs/reports.md), in the caller's scope:
   availability per site as bars, alerts, time to acknowledge and to resolve per team. Plain SVG, no library. */
"use strict";

window.CityhubReports = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 300000; // figures of a week move slowly: every 5 minutes is plenty on a slow link
  const DAYS = 7;
  let ctx = null;
  let timer = null;
  let report = null;
  let failed = false;

  const el = (tag, className, text) => {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  };

  const percent = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`);
  const duration = (s) => (s === null || s === undefined ? "—" : s < 120 ? `${s.toFixed(0)} s` : s < 7200 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`);

  // One horizontal bar per row: label, a bar as long as the share, the figure.
  function bars(rows) {
    const height = 18;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "bars");
    svg.setAttribute("viewBox", `0 0 400 ${rows.length * height}`);
    svg.setAttribute("width", "400");
    svg.setAttribute("height", String(rows.length * height));
    rows.forEach(([label, share, text], i) => {
      const y = i * height;
      const name = document.createElementNS(SVG, "text");
      name.setAttribute("x", "0");
      name.setAttribute("y", String(y + 13));
      name.textContent = label;
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", "170");
      bar.setAttribute("y", String(y + 3));
      bar.setAttribute("height", "12");
      bar.setAttribute("width", String(Math.max(0, Math.min(1, share || 0)) * 160));
      const figure = document.createElementNS(SVG, "text");
      figure.setAttribute("x", "336");
      figure.setAttribute("y", String(y + 13));
      figure.textContent = text;
      svg.append(name, bar, figure);
    });
    return svg;
  }

  function teamsTable(rows) {
    const table = el("table", "kpi-teams");
    const head = el("tr");
    for (const key of ["alerts.team", "reports.alerts", "reports.mtta", "reports.mttr", "reports.open"]) head.append(el("th", "", ctx.t(key)));
    table.append(head);
    for (const row of rows) {
      const line = el("tr");
      line.append(el("td", "", row.team), el("td", "", String(row.episodes)), el("td", "", duration(row.mtta_s)),
        el("td", "", duration(row.mttr_s)), el("td", "", String(row.open_at_end)));
      table.append(line);
    }
    return table;
  }

  function render() {
    const container = document.querySelector("#reports");
    if (!container || !ctx) return;
    container.replaceChildren();
    if (!report) {
      container.append(el("p", "muted", ctx.t(failed ? "reports.unavailable" : "devices.loading")));
      return;
    }
    const s = report.summary;
    container.append(el("p", "kpi-summary", ctx.t("reports.summary", {
      days: DAYS, managed: s.devices_managed, online: s.devices_online, availability: percent(s.availability),
      alerts: s.alerts, mtta: duration(s.mtta_s), mttr: duration(s.mttr_s),
    })));
    const sites = report.availability_by_site.filter((r) => r.availability !== null);
    if (sites.length) {
      container.append(el("h3", "", ctx.t("reports.availability_by_site")));
      container.append(bars(sites.map((r) => [r.site, r.availability, percent(r.availability)])));
    }
    if (report.response_times.length) {
      container.append(el("h3", "", ctx.t("reports.by_team")));
      container.append(teamsTable(report.response_times));
    }
  }

  async function refresh() {
    const to = new Date();
    const from = new Date(to.getTime() - DAYS * 86400 * 1000);
    try {
      report = await ctx.api(`/reports/kpi?${new URLSearchParams({ from: from.toISOString(), to: to.toISOString() })}`, { timeoutMs: 30000 });
      failed = false;
    } catch (err) {
      failed = true; // no reports on this hub, or its store is away: the rest of the console goes on
    }
    render();
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
    report = null;
    failed = false;
  }

  return { start, stop, render };
})();
