// The status page: reads the admin API every few seconds and draws what it says. The
// page holds no data of its own; every text from the API goes in with textContent.
import { act, actionButton } from "./actions.js";
import { drawChart, SERIES } from "./chart.js";
import { startSearch } from "./search.js";

const KEY = "ucaas-sync.admin-token";
const EVERY_MS = 5000;
const STALE_MS = 3 * EVERY_MS;
const OUTBOX = ["pending", "in_flight", "waiting", "held", "dead", "done", "dropped"];
const OPEN = ["pending", "in_flight", "waiting", "held", "dead"];
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

let timer = null;
let lastOk = 0;
let lastBuckets = [];

// -- the token: from #token=..., kept in this tab only --------------------------------------------
function takeTokenFromAddress() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

class Refused extends Error {}

async function get(path) {
  const token = sessionStorage.getItem(KEY);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const answer = await fetch(path, { headers, cache: "no-store" });
  if (answer.status === 401) throw new Refused();
  if (!answer.ok) throw new Error(`${path}: HTTP ${answer.status}`);
  return answer.json();
}

function showPrompt(refused) {
  clearTimeout(timer);
  $("dashboard").hidden = true;
  $("token-prompt").hidden = false;
  $("token-refused").hidden = !refused;
  setState("error", "token needed");
  $("token-input").focus();
}

// -- small DOM helpers ----------------------------------------------------------------------------
function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

function metric(testid, label, value, state, { alert = false, title = "" } = {}) {
  const row = node("div", `metric s-${state}${value ? "" : " zero"}${alert ? " alert" : ""}`);
  row.dataset.testid = testid;
  if (title) row.title = title;
  row.append(node("span", "dot"), node("span", "label", label), node("span", "value", fmt(value)));
  return row;
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));

function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

function ago(iso) {
  if (!iso) return "";
  return `${age((Date.now() - new Date(iso).getTime()) / 1000)} ago`;
}

function setState(state, text) {
  const pill = $("state");
  pill.dataset.state = state;
  pill.textContent = text;
}

const slug = (text) => String(text).replace(/[^A-Za-z0-9_-]+/g, "-");
const sum = (values) => values.reduce((a, b) => a + b, 0);

// -- the pipeline ------------------------------------------------------------------------------------
// Inbox outcomes are "accepted" or a note on why an event needed no command ("no change",
// "feed registered: fetched soon"): the notes are summed into one row, named in its tooltip.
function renderTopics(status) {
  const events = status.events || {};
  $("events-total").textContent = fmt(sum(Object.values(events)));
  const named = ["accepted", "duplicate", "invalid"];
  const notes = Object.keys(events).filter((o) => !named.includes(o)).sort();
  const rows = named
    .filter((o) => o === "accepted" || events[o])
    .map((o) => metric(`events-${o}`, o, events[o] || 0, o, { alert: o === "invalid" }));
  rows.push(
    metric("events-no-change", "no command needed", sum(notes.map((o) => events[o])), "dropped", {
      title: notes.map((o) => `${o}: ${events[o]}`).join("\n"),
    }),
  );
  $("events").replaceChildren(...rows);
  const letters = status.dead_letters || {};
  const total = sum(Object.values(letters));
  $("dead-letters").replaceChildren(
    metric("dead-letters-total", "dead letters", total, "bad", { alert: true }),
    ...Object.keys(letters).sort().map((topic) =>
      metric(`dead-letters-${slug(topic)}`, `  ↳ ${topic}.dlq`, letters[topic], "bad"),
    ),
  );
  const lag = status.consumer_lag_total;
  $("lag-summary").replaceChildren(
    metric("consumer-lag", "consumer lag", lag, "lag", {
      title: lag === null ? status.lag_error || "unknown" : "records not yet taken",
    }),
  );
}

function renderFeeds(status) {
  const feeds = status.feeds || {};
  const known = ["ok", "unchanged", "held", "failed", "not fetched"];
  const names = [...new Set([...known, ...Object.keys(feeds)])];
  // held: a version that would cancel many meetings waits for approval (see "Held")
  $("feeds").replaceChildren(
    ...names.map((s) =>
      metric(`feeds-${slug(s)}`, s === "failed" ? "failing" : s, feeds[s] || 0, slug(s), {
        alert: s === "failed" || s === "held",
      }),
    ),
  );
}

function renderOutbox(status) {
  const outbox = status.outbox || {};
  $("outbox-open").textContent = fmt(status.open_commands ?? sum(OPEN.map((s) => outbox[s] || 0)));
  const all = sum(Object.values(outbox));
  const bar = $("outbox-bar");
  bar.replaceChildren(
    ...OUTBOX.filter((s) => outbox[s]).map((s) => {
      const part = node("span", `s-${s}`);
      part.title = `${s.replace("_", " ")}: ${outbox[s]}`;
      part.style.width = `${(100 * outbox[s]) / all}%`;
      return part;
    }),
  );
  $("outbox").replaceChildren(
    ...OUTBOX.map((s) => {
      const label = s === "held" && status.held_for_approval
        ? `held (${status.held_for_approval} for approval)`
        : s.replace("_", " ");
      return metric(`outbox-${s}`, label, outbox[s] || 0, s, { alert: s === "dead" });
    }),
  );
  $("outbox-oldest").textContent =
    status.oldest_open_age_s === null ? "nothing open" : `oldest open: ${age(status.oldest_open_age_s)}`;
}

// Result events wait in the outbox's result table until the relay has the broker's ack:
// how many wait and the oldest one's age are the relay's lag.
const RELAY_SLOW_S = 60;

function renderResults(status) {
  const results = status.results;
  if (!results) {
    $("results").replaceChildren();
    $("results-lag").textContent = "";
    return;
  }
  const slow = results.unpublished > 0 && results.oldest_unpublished_age_s > RELAY_SLOW_S;
  $("results").replaceChildren(
    metric("results-unpublished", "unpublished", results.unpublished, "waiting", { alert: slow }),
    metric("results-published", "published, last hour", results.published_last_hour, "done"),
  );
  $("results-lag").textContent = results.unpublished
    ? `relay lag: oldest unpublished ${age(results.oldest_unpublished_age_s)}`
    : "relay lag: nothing waits";
}

// The last five minutes, the current one included (a fresh service has only that one).
const recentOf = (buckets) => buckets.slice(-5);

function renderCalls(calls, buckets) {
  const byStatus = calls.by_status || {};
  // An array, not an object: JavaScript puts integer-like keys ("429") first.
  const classes = [
    ["2xx", "2xx ok"],
    ["4xx", "4xx refused"],
    ["429", "429 rate limited"],
    ["5xx", "5xx server error"],
    ["error", "no answer"],
  ];
  const counts = Object.fromEntries(classes.map(([c]) => [c, 0]));
  for (const [code, n] of Object.entries(byStatus)) {
    const cls = code === "error" || code === "429" ? code : `${code[0]}xx`;
    counts[cls] = (counts[cls] || 0) + n;
  }
  for (const cls of Object.keys(counts)) {
    if (!classes.some(([c]) => c === cls)) classes.push([cls, cls]);
  }
  $("calls-total").textContent = fmt(sum(Object.values(byStatus)));
  $("calls").replaceChildren(
    ...classes.map(([c, label]) =>
      metric(`calls-${c}`, label, counts[c], c, { alert: c === "5xx" || c === "error" }),
    ),
  );
  const recent = recentOf(buckets);
  const rate = recent.length ? sum(recent.map((b) => b.calls)) / recent.length : 0;
  $("calls-rate").textContent = `${rate.toFixed(rate < 10 ? 1 : 0)} calls/min over the last 5 min`;
}

// -- panels ---------------------------------------------------------------------------------------
function renderFailures(failures) {
  const list = $("failure-list");
  list.replaceChildren(
    ...failures.map((f) => {
      const item = node("li", `failure ${slug(f.what)}`);
      item.dataset.testid = "failure";
      item.dataset.what = f.what;
      const head = node("div", "head");
      const kind = { command: "dead command", dead_letter: "dead letter", feed: "feed" }[f.what];
      head.append(node("span", "what", kind || f.what), node("span", "id", f.id));
      const at = node("span", "at", ago(f.at));
      if (f.at) at.title = new Date(f.at).toLocaleString();
      head.append(at);
      const reason = node("div", "reason", f.reason);
      reason.dataset.testid = "failure-reason";
      item.append(head, reason);
      if (f.what === "command" && f.command_id) {
        const actions = node("div", "actions");
        actions.append(actionButton("retry", f.command_id), actionButton("drop", f.command_id));
        item.append(actions);
      }
      return item;
    }),
  );
  $("failures-empty").hidden = failures.length > 0;
  $("failures-count").textContent = failures.length ? `${failures.length} shown` : "";
}

function renderHeld(held) {
  const body = $("held-table").querySelector("tbody");
  body.replaceChildren(
    ...held.map((c) => {
      const row = node("tr");
      row.dataset.testid = "held-row";
      row.append(
        node("td", "num", String(c.id)),
        node("td", "", c.tenant || ""),
        node("td", "", c.kind),
        node("td", "", c.entity),
        node("td", "", (c.hold_reason || "").replace(/^approval: /, "")),
        node("td", "", ago(c.created_at)),
      );
      const actions = node("td", "actions");
      actions.append(actionButton("approve", c.id), actionButton("deny", c.id));
      row.append(actions);
      return row;
    }),
  );
  $("held-table").hidden = held.length === 0;
  $("held-empty").hidden = held.length > 0;
  $("held-count").textContent = held.length ? `${held.length} waiting` : "";
}

// Each feed's last fetch, and the events it skipped as unusable (the first few, with reasons).
function renderFeedList(feeds) {
  const body = $("feeds-table").querySelector("tbody");
  body.replaceChildren(
    ...feeds.map((f) => {
      const row = node("tr", f.skipped_events ? "skipping" : "");
      row.dataset.testid = "feed-row";
      row.dataset.feed = f.feed_id;
      const reasons = node("td", "reasons");
      reasons.dataset.testid = "feed-skipped";
      for (const s of f.skipped_sample || []) {
        reasons.append(node("div", "", `${s.uid || "(no UID)"}: ${s.reason}`));
      }
      const shown = (f.skipped_sample || []).length;
      if (f.skipped_events > shown) reasons.append(node("div", "more", `and ${f.skipped_events - shown} more`));
      const status = f.last_status === "failed" ? `failed: ${f.last_error || ""}` : f.last_status || "not fetched";
      row.append(
        node("td", "", f.feed_id),
        node("td", "", `${status} ${ago(f.last_fetch_at)}`.trim()),
        node("td", "num", fmt(f.occurrences)),
        node("td", "num", fmt(f.skipped_events || 0)),
        reasons,
      );
      return row;
    }),
  );
  const skipped = sum(feeds.map((f) => f.skipped_events || 0));
  $("feeds-table").hidden = feeds.length === 0;
  $("feeds-empty").hidden = feeds.length > 0;
  $("feeds-skipped-total").textContent = skipped ? `${fmt(skipped)} events skipped` : "";
}

function renderLag(status) {
  const rows = status.consumer_lag;
  const body = $("lag-table").querySelector("tbody");
  body.replaceChildren(
    ...(rows || []).map((r) => {
      const row = node("tr");
      row.append(node("td", "", r.topic), node("td", "num", String(r.partition)),
        node("td", "num", fmt(r.lag)));
      return row;
    }),
  );
  $("lag-table").hidden = !rows || rows.length === 0;
  const empty = $("lag-empty");
  empty.hidden = Boolean(rows && rows.length);
  empty.textContent = rows ? "No partitions assigned yet." : `Unknown: ${status.lag_error || "no broker"}`;
  $("lag-total").textContent = rows ? `${fmt(status.consumer_lag_total)} behind` : "";
}

function renderChart(buckets) {
  lastBuckets = buckets;
  const recent = recentOf(buckets);
  $("legend").replaceChildren(
    ...SERIES.map((s) => {
      const item = node("span", s.key);
      item.dataset.testid = `legend-${s.key}`;
      const avg = recent.length ? sum(recent.map(s.value)) / recent.length : 0;
      item.append(node("i"), document.createTextNode(`${s.label} `), node("b", "", avg.toFixed(1)));
      return item;
    }),
  );
  drawChart($("chart"), buckets);
}

// -- the loop -------------------------------------------------------------------------------------
async function refresh() {
  clearTimeout(timer);
  try {
    const [status, calls, buckets, failures, held, feeds] = await Promise.all([
      get("api/status"),
      get("api/calls?minutes=60"),
      get("api/throughput?minutes=60"),
      get("api/failures?limit=20"),
      get("api/held"),
      get("api/feeds"),
    ]);
    $("token-prompt").hidden = true;
    $("dashboard").hidden = false;
    renderTopics(status);
    renderFeeds(status);
    renderOutbox(status);
    renderCalls(calls, buckets);
    renderResults(status);
    renderFailures(failures);
    renderHeld(held);
    renderFeedList(feeds.filter((f) => !f.removed));
    renderLag(status);
    renderChart(buckets);
    lastOk = Date.now();
    setState("live", "live");
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = String(lastOk);
  } catch (error) {
    if (error instanceof Refused) {
      const hadToken = Boolean(sessionStorage.getItem(KEY));
      sessionStorage.removeItem(KEY);
      showPrompt(hadToken);
      return;
    }
    setState(Date.now() - lastOk > STALE_MS ? "error" : "stale", "not answering");
  }
  timer = setTimeout(refresh, EVERY_MS);
}

function start() {
  takeTokenFromAddress();
  $("interval").textContent = String(EVERY_MS / 1000);
  startSearch(get, $);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("token-input");
    sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    $("token-prompt").hidden = true;
    refresh();
  });
  // one listener for every action button, however often the lists are redrawn
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const token = sessionStorage.getItem(KEY);
    act(button.dataset.action, Number(button.dataset.command), token, $("action-result"), refresh);
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("token=")) {
      takeTokenFromAddress();
      refresh();
    }
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => lastBuckets.length && drawChart($("chart"), lastBuckets), 150);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && Date.now() - lastOk > EVERY_MS) refresh();
  });
  refresh();
}

start();
