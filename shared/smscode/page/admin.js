// The pumping dashboard: reads admin/stats, draws its charts as inline SVG, blocks and unblocks.
// No library and no inline script: the page keeps the strict CSP of the sign-up page.
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  // The data routes sit one level above assets/, under whatever prefix serves the page; built
  // on location.origin, which never carries the credentials of http://id:secret@host/admin
  // (fetch refuses a URL that does: the browser sends the remembered login on its own).
  const script = document.currentScript;
  const base = new URL(new URL("..", script ? script.src : location.href).pathname, location.origin);
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en");
  // 20%, 75.7%: a decimal only where it says something.
  const pct = (value) => (value == null ? "–" : `${+(value * 100).toFixed(1)}%`);
  let minConversion = 0.2;
  // Why a block is refused: to everyone (low conversion, or by hand), or to one client network.
  const REASONS = { auto: "low conversion", manual: "by hand", network: "one network's low conversion:" };

  function el(name, attrs = {}, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text != null) node.textContent = text;
    return node;
  }

  function html(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // A "nice" axis top: 1, 2 or 5 times a power of ten, at least the largest value.
  function niceMax(value) {
    if (value <= 4) return 4;
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 2.5, 5, 10].map((step) => step * power).find((top) => top >= value);
  }

  const W = 640, H = 240, PAD = { left: 44, right: 12, top: 12, bottom: 30 };

  function frame(container, top, label) {
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "svg" });
    const plotH = H - PAD.top - PAD.bottom;
    for (let i = 0; i <= 4; i++) {
      const y = PAD.top + plotH - (plotH * i) / 4;
      svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid-line" }));
      svg.append(el("text", { x: PAD.left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, label((top * i) / 4)));
    }
    container.replaceChildren(svg);
    return svg;
  }

  function hourLabels(svg, hours, slot) {
    hours.forEach((row, i) => {
      if (i % 3 !== 2 && i !== hours.length - 1) return;
      const date = new Date(row.hour);
      const text = i === hours.length - 1 ? "now" : `${String(date.getHours()).padStart(2, "0")}:00`;
      svg.append(el("text", { x: PAD.left + slot * (i + 0.5), y: H - 10, class: "tick", "text-anchor": "middle" }, text));
    });
  }

  function volumeChart(hours) {
    const top = niceMax(Math.max(1, ...hours.map((row) => row.sends + row.refused)));
    const svg = frame($("chart-volume"), top, (v) => fmt.format(Math.round(v)));
    const plotH = H - PAD.top - PAD.bottom;
    const slot = (W - PAD.left - PAD.right) / hours.length;
    const barW = Math.max(2, slot * 0.36);
    const y = (v) => PAD.top + plotH - (plotH * v) / top;
    hours.forEach((row, i) => {
      const x = PAD.left + slot * i + slot / 2 - barW - 1;
      const tip = `${new Date(row.hour).toLocaleString()}: ${row.sends} sent, ${row.verified} verified, ${row.refused} refused`;
      const group = el("g");
      group.append(el("title", {}, tip));
      group.append(el("rect", { x, y: y(row.sends), width: barW, height: y(0) - y(row.sends), rx: 2, class: "bar sends" }));
      if (row.refused) {
        group.append(el("rect", { x, y: y(row.sends + row.refused), width: barW, height: y(0) - y(row.refused), rx: 2, class: "bar refused" }));
      }
      group.append(el("rect", { x: x + barW + 2, y: y(row.verified), width: barW, height: y(0) - y(row.verified), rx: 2, class: "bar verified" }));
      svg.append(group);
    });
    hourLabels(svg, hours, slot);
  }

  function conversionChart(hours) {
    const svg = frame($("chart-conversion"), 1, (v) => `${Math.round(v * 100)}%`);
    const plotH = H - PAD.top - PAD.bottom;
    const slot = (W - PAD.left - PAD.right) / hours.length;
    const y = (v) => PAD.top + plotH - plotH * v;
    const ty = y(minConversion);
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: ty, y2: ty, class: "threshold" }));
    let path = "", pen = "M";  // a gap (an hour without sends) starts a new segment
    const dots = [];
    hours.forEach((row, i) => {
      if (row.conversion == null) { pen = "M"; return; }
      const x = PAD.left + slot * (i + 0.5);
      path += `${pen}${x.toFixed(1)},${y(row.conversion).toFixed(1)}`;
      pen = "L";
      const dot = el("circle", { cx: x, cy: y(row.conversion), r: 3.5, class: row.conversion < minConversion ? "dot low" : "dot" });
      dot.append(el("title", {}, `${new Date(row.hour).toLocaleString()}: ${pct(row.conversion)} (${row.verified}/${row.sends})`));
      dots.push(dot);
    });
    if (path) svg.append(el("path", { d: path, class: "line" }));
    svg.append(...dots);
    hourLabels(svg, hours, slot);
  }

  function conversionBar(value) {
    const cell = html("td");
    const wrap = html("div", "conv");
    const track = html("div", "track");
    const fill = html("div", value != null && value < minConversion ? "fill low" : "fill");
    fill.style.width = `${Math.round((value || 0) * 100)}%`;  // CSSOM, allowed by the CSP
    track.append(fill);
    wrap.append(track, html("span", value != null && value < minConversion ? "conv-text low" : "conv-text", pct(value)));
    cell.append(wrap);
    return cell;
  }

  function actionButton(block, blocked) {
    const cell = html("td", "action");
    const button = html("button", blocked ? "ghost" : "ghost danger-text", blocked ? "Unblock" : "Block");
    button.type = "button";
    button.dataset.block = block;
    button.dataset.action = blocked ? "unblock" : "block";
    cell.append(button);
    return cell;
  }

  function duration(seconds) {
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
  }

  function tables(data) {
    const blocked = $("blocked").tBodies[0];
    blocked.replaceChildren(...data.blocked.map((entry) => {
      const row = html("tr");
      row.append(html("td", "mono", entry.block));
      row.append(html("td", null, REASONS[entry.reason] || "by hand"));
      if (entry.network) row.cells[1].append(html("span", "mono network", ` ${entry.network}`));
      row.append(html("td", null, entry.reason === "manual" ? "–" : `${entry.sends} / ${entry.verified}`));
      row.append(html("td", null, duration(entry.retry_after)), actionButton(entry.block, true));
      return row;
    }));
    $("blocked-empty").hidden = data.blocked.length > 0;
    $("blocked").hidden = data.blocked.length === 0;

    const blocks = $("blocks").tBodies[0];
    blocks.replaceChildren(...data.blocks.map((entry) => {
      const row = html("tr", entry.blocked ? "is-blocked" : null);
      const name = html("td", "mono", entry.block);
      if (entry.blocked) name.append(html("span", "badge", "blocked"));
      row.append(name, html("td", "num", fmt.format(entry.sends)), html("td", "num", fmt.format(entry.verified)));
      row.append(conversionBar(entry.conversion), html("td", entry.refused ? "num low" : "num", fmt.format(entry.refused)));
      row.append(actionButton(entry.block, entry.blocked));
      return row;
    }));
    $("blocks-empty").hidden = data.blocks.length > 0;
  }

  function delivery(outcomes) {
    const box = $("delivery");
    const order = ["sent", "failed", "expired", "skipped"];
    const names = [...order.filter((k) => k in outcomes), ...Object.keys(outcomes).filter((k) => !order.includes(k))];
    const total = names.reduce((sum, k) => sum + outcomes[k], 0);
    if (!total) { box.replaceChildren(html("p", "empty", "No delivery finished in the last 24 hours.")); return; }
    const bar = html("div", "stack");
    const list = html("ul", "outcomes");
    for (const name of names) {
      const part = html("div", `part ${name}`);
      part.style.width = `${(100 * outcomes[name]) / total}%`;
      part.title = `${name}: ${outcomes[name]}`;
      bar.append(part);
      const item = html("li");
      item.append(html("span", `key ${name}`), html("span", "name", name), html("strong", null, fmt.format(outcomes[name])),
        html("span", "share", pct(outcomes[name] / total)));
      list.append(item);
    }
    box.replaceChildren(bar, list);
  }

  function render(data) {
    minConversion = data.rule.min_conversion;
    const t = data.totals;
    $("t-sends").textContent = fmt.format(t.sends);
    $("t-verified").textContent = fmt.format(t.verified);
    $("t-conversion").textContent = pct(t.sends ? t.verified / t.sends : null);
    $("t-refused").textContent = fmt.format(t.refused);
    $("t-blocked").textContent = fmt.format(data.blocked.length);
    $("rule").textContent = `A number block is refused for ${duration(data.rule.block_seconds)} when, ` +
      `over the last ${duration(data.rule.window_seconds)}, it has ≥ ${data.rule.min_sends} sends ` +
      `and under ${pct(data.rule.min_conversion)} of them verified: to everyone when those sends ` +
      `come from ${data.rule.min_networks} networks or more, else to the network that sent them.`;
    volumeChart(data.hours);
    conversionChart(data.hours);
    tables(data);
    delivery(data.delivery);
    $("updated").textContent = `Updated ${new Date(data.generated_at).toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  async function load() {
    try {
      const res = await fetch(new URL("admin/stats", base), { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) throw new Error(`The stats could not be loaded (HTTP ${res.status}).`);
      render(await res.json());
      showError("");
    } catch (error) {
      showError(error.message);
    }
  }

  async function change(block, action) {
    const res = await fetch(new URL(`admin/blocks/${encodeURIComponent(block)}`, base), {
      method: action === "unblock" ? "DELETE" : "PUT", credentials: "same-origin",
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      showError(body.message || `Could not ${action} ${block} (HTTP ${res.status}).`);
      return;
    }
    await load();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) change(button.dataset.block, button.dataset.action);
  });
  $("block-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("block-input");
    if (input.reportValidity()) change(input.value.trim(), "block").then(() => { input.value = ""; });
  });
  $("refresh").addEventListener("click", load);
  load();
  setInterval(load, 30000);
})();
