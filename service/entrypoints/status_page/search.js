// The search box: find an entity (GET api/find), then tell its story (GET api/history/…):
// its events, commands, UCaaS calls and result events, oldest first, as `ucaas-sync
// history` prints them. What the API answers comes from HR, CRM and calendar data, so
// every text goes in with textContent, never as markup.

const DATA_SHOWN = 300; // characters of a result's data: the rest is in api/history

let asked = 0; // the latest question: an older answer arriving late is not drawn

function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function say($, text) {
  const message = $("search-message");
  message.hidden = !text;
  message.textContent = text || "";
}

function renderMatches($, query, matches) {
  $("search-matches").replaceChildren(
    ...matches.map((m) => {
      const item = node("li", `match ${m.kind}`);
      const button = node("button", "match-button");
      button.type = "button";
      button.dataset.entity = m.entity;
      button.dataset.testid = "search-match";
      button.append(node("span", "kind", m.kind), node("span", "label", m.label),
        node("span", "entity", m.entity));
      item.append(button);
      return item;
    }),
  );
  $("search-count").textContent = matches.length ? `${matches.length} found` : "";
  say($, matches.length ? "" : `Nothing found for “${query}”.`);
}

// [time, what, detail, extra] of each part of the story, as `ucaas-sync history` words it
function lines(story) {
  const rows = [];
  for (const e of story.events) {
    rows.push([e.received_at, "event", `${e.type} ${e.event_id} (${e.source}): ${e.outcome}`]);
  }
  for (const c of story.commands) {
    const error = c.last_error ? ` – ${c.last_error_code || ""} ${c.last_error}` : "";
    rows.push([c.created_at, "command", `#${c.id} ${c.kind}: ${c.status}${error}`]);
  }
  for (const call of story.calls) {
    const answer = call.status ?? call.error ?? "no answer";
    const code = call.api_code ? ` code ${call.api_code}` : "";
    rows.push([call.at, "call",
      `#${call.command_id ?? "–"} ${call.method} ${call.route} → ${answer}${code} (${Math.round(call.latency_ms)} ms)`]);
  }
  for (const r of story.results || []) {
    const sent = r.published ? `published ${when(r.published_at)}` : "not published yet";
    const data = r.data === null || r.data === undefined ? "" : JSON.stringify(r.data);
    rows.push([r.at, "result", `${r.type} ${r.event_id} (#${r.command_id ?? "–"}): ${sent}`,
      data.length > DATA_SHOWN ? `${data.slice(0, DATA_SHOWN)}…` : data]);
  }
  return rows.sort((a, b) => new Date(a[0]) - new Date(b[0]));
}

function renderStory($, story) {
  const rows = lines(story);
  $("story-entity").textContent = story.entity;
  $("story-count").textContent = rows.length ? `${rows.length} entries` : "nothing recorded";
  $("story-table").querySelector("tbody").replaceChildren(
    ...rows.map(([at, what, detail, extra]) => {
      const row = node("tr", `story-${what}`);
      row.dataset.testid = "story-row";
      row.dataset.what = what;
      const cell = node("td", "detail", detail);
      if (extra) cell.append(node("div", "data", extra));
      row.append(node("td", "at", when(at)), node("td", "what", what), cell);
      return row;
    }),
  );
  $("story-mappings").replaceChildren(
    ...story.mappings.map((m) => node("li", "", `mapped ${m.kind} ${m.external_id} → UCaaS ${m.ucaas_id}`)),
  );
  $("story").hidden = false;
}

// `get` is the page's reader of the API (its token, its refusal handling)
export function startSearch(get, $) {
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = $("search-input").value.trim();
    if (!query) return;
    const mine = ++asked;
    say($, "Searching…");
    $("search-matches").replaceChildren();
    $("search-count").textContent = "";
    $("story").hidden = true;
    try {
      const matches = await get(`api/find?q=${encodeURIComponent(query)}`);
      if (mine === asked) renderMatches($, query, matches);
    } catch (error) {
      // a refused token has no message: the next refresh asks for another
      if (mine === asked) say($, `The search failed: ${error.message || "the token was refused"}`);
    }
  });
  $("search-matches").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-entity]");
    if (!button) return;
    const mine = ++asked;
    try {
      const story = await get(`api/history/${encodeURIComponent(button.dataset.entity)}`);
      if (mine === asked) renderStory($, story);
    } catch (error) {
      if (mine === asked) say($, `The story could not be read: ${error.message || "the token was refused"}`);
    }
  });
}
