// The skylift dashboard: one event stream (server-sent events) feeds every table.
// Everything is built with textContent, never innerHTML: log lines are the handlers' own.
"use strict";

const MAX_LINES = 500;

// A server beyond loopback needs its token: open the page as /_skylift/#token=TOKEN.
// The fragment never leaves the browser; the token is kept for this tab only.
const token = (() => {
  const found = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (found) {
    sessionStorage.setItem("skylift-token", decodeURIComponent(found[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("skylift-token");
})();

function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fixed(value, digits) {
  return value === null || value === undefined ? "–" : value.toFixed(digits);
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "–" : (seconds * 1000).toFixed(2);
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

function showFunctions(functions) {
  const body = $("functions").tBodies[0];
  body.replaceChildren();
  const select = $("log-function");
  const known = new Set(Array.from(select.options, (o) => o.value));
  for (const f of functions) {
    const row = body.insertRow();
    row.dataset.function = f.name;
    cell(row, f.name);
    const fields = [
      ["rps", fixed(f.rps, 1)],
      ["p50", ms(f.p50)],
      ["p99", ms(f.p99)],
      ["invocations", String(f.invocations)],
      ["errors", String(f.errors)],
      ["throttles", String(f.throttles)],
      ["cold_starts", String(f.cold_starts)],
      ["busy", String(f.busy)],
      ["idle", String(f.idle)],
    ];
    for (const [name, text] of fields) {
      const td = cell(row, text, "num");
      td.dataset.field = name;
      if ((name === "errors" || name === "throttles") && f[name] > 0) td.classList.add("bad");
    }
    if (!known.has(f.name)) select.add(new Option(f.name, f.name));
  }
}

function showQueues(queues) {
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const q of queues) {
    const row = body.insertRow();
    row.dataset.queue = q.name;
    cell(row, q.name);
    for (const [name, text] of [
      ["visible", String(q.visible)],
      ["in_flight", String(q.in_flight)],
      ["delayed", String(q.delayed)],
      ["oldest_age", fixed(q.oldest_age, 1)],
    ]) {
      cell(row, text, "num").dataset.field = name;
    }
  }
}

let shownAlerts = "";

function showAlerts(alerts) {
  // Redrawn only when they change: a button replaced under the pointer loses its click.
  const key = JSON.stringify(alerts);
  if (key === shownAlerts) return;
  shownAlerts = key;
  const body = $("alerts").tBodies[0];
  body.replaceChildren();
  $("no-alerts").hidden = alerts.length > 0;
  for (const a of alerts) {
    const row = body.insertRow();
    row.dataset.alert = String(a.id);
    row.className = a.state === "acked" ? "acked" : a.severity;
    cell(row, String(a.id));
    cell(row, clock(a.opened_at));
    cell(row, `${a.kind} ${a.subject}`);
    cell(row, a.metric);
    cell(row, a.value.toPrecision(3), "num");
    cell(row, a.sigma.toFixed(1), "num");
    cell(row, a.severity);
    cell(row, a.escalated_to ? `${a.paged} → ${a.escalated_to}` : a.paged || "");
    const state = cell(row, a.state === "acked" ? `acked by ${a.acked_by}` : a.state);
    state.dataset.field = "state";
    const actions = row.insertCell();
    if (a.state === "open") {
      const button = document.createElement("button");
      button.textContent = "Ack";
      button.dataset.ack = String(a.id);
      button.addEventListener("click", () => ack(a.id, button, state));
      actions.append(button);
    }
  }
}

async function ack(id, button, state) {
  button.disabled = true;
  const error = $("error");
  try {
    const response = await fetch(`alerts/${id}/ack`, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ by: "the dashboard" }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message || `HTTP ${response.status}`);
    error.hidden = true;
    state.textContent = `acked by ${answer.acked_by}`;
    state.parentElement.className = "acked";
    button.remove();
  } catch (e) {
    error.textContent = `Could not ack alert ${id}: ${e.message}`;
    error.hidden = false;
    button.disabled = false;
  }
}

// Per function, the invocation whose lines are arriving and whether it failed: its REPORT
// line then offers a Replay (an "[ERROR]" line, or REPORT's own Status: error/timeout).
const running = new Map();

function failedInvocation(line) {
  const start = /^START RequestId: (\S+)/.exec(line.message);
  if (start) {
    running.set(line.function, { id: start[1], failed: false });
    return null;
  }
  const current = running.get(line.function);
  if (current && line.message.startsWith("[ERROR]")) current.failed = true;
  const report = /^REPORT RequestId: (\S+)/.exec(line.message);
  if (!report) return null;
  const failed = /\tStatus: (error|timeout)/.test(line.message)
    || (current && current.id === report[1] && current.failed);
  running.delete(line.function);
  return failed ? report[1] : null;
}

function replayButton(requestId) {
  const button = document.createElement("button");
  button.textContent = "Replay";
  button.className = "replay";
  button.dataset.replay = requestId;
  const outcome = document.createElement("span");
  outcome.className = "replayed";
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const response = await fetch(`invocations/${encodeURIComponent(requestId)}/replay`, {
        method: "POST",
        headers: authHeaders(),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.message || `HTTP ${response.status}`);
      const show = (side) => side.error || JSON.stringify(side.payload);
      outcome.textContent = ` was ${answer.before.status}, now ${answer.after.status}: `
        + show(answer.after);
    } catch (e) {
      outcome.textContent = ` could not replay: ${e.message}`;
      button.disabled = false;
    }
  });
  const span = document.createElement("span");
  span.append(" ", button, outcome);
  return span;
}

function addLines(lines) {
  const box = $("logs");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  for (const line of lines) {
    const div = document.createElement("div");
    div.className = "line";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date(line.timestamp).toLocaleTimeString() + " ";
    const fn = document.createElement("span");
    fn.className = "fn";
    fn.textContent = line.function + " ";
    const message = document.createElement("span");
    message.className = "message";
    message.textContent = line.message.replace(/\n$/, "");
    div.append(time, fn, message);
    const failed = failedInvocation(line);
    if (failed) div.append(replayButton(failed));
    box.append(div);
  }
  while (box.childElementCount > MAX_LINES) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function setStatus(kind, text) {
  const status = $("status");
  status.className = `status ${kind}`;
  status.textContent = text;
}

// Server-sent events, read with fetch: EventSource cannot send the Authorization header.
async function follow(url, onEvent, signal) {
  const response = await fetch(url, { headers: authHeaders(), signal, cache: "no-store" });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).message || message;
    } catch (e) {
      // not JSON: keep the status
    }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

let current = null;

async function connect() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const params = new URLSearchParams();
  const filter = $("log-filter").value.trim();
  const fn = $("log-function").value;
  if (filter) params.set("filter", filter);
  if (fn) params.set("function", fn);
  $("logs").replaceChildren();
  let delay = 1000;
  while (!controller.signal.aborted) {
    setStatus("connecting", "connecting…");
    try {
      await follow(`dashboard/events?${params}`, (name, data) => {
        if (name === "snapshot") {
          setStatus("live", "live");
          delay = 1000;
          showFunctions(data.functions);
          showQueues(data.queues);
          showAlerts(data.alerts);
          $("updated").textContent = `updated ${clock(data.time)}`;
        } else if (name === "logs") {
          $("log-error").hidden = true;
          addLines(data);
        }
      }, controller.signal);
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e.status === 400 || e.status === 403) {
        // A bad filter or a missing token: retrying would not help; say what to change.
        const where = e.status === 400 ? $("log-error") : $("error");
        where.textContent = e.status === 403
          ? `${e.message} Open this page as /_skylift/#token=TOKEN (the token skylift up printed).`
          : e.message;
        where.hidden = false;
        setStatus("failed", e.status === 400 ? "bad filter" : "no access");
        return;
      }
    }
    if (controller.signal.aborted) return;
    setStatus("connecting", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

$("log-form").addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
$("log-function").addEventListener("change", () => connect());
// A closed tab ends its stream at once; the server notices and stops sending.
window.addEventListener("pagehide", () => current && current.abort());
connect();
