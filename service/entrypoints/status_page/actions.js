// The operator's actions on the status page: retry or drop a dead command, approve or deny
// a held one. Each is a POST with the tab's token (sessionStorage, typed once); the
// answer, or the refusal (a reader's token gets a 403), is shown in words. The server
// decides who may act and records every attempt in its audit log: nothing is decided here.

const WHAT = {
  retry: { path: (id) => `api/commands/${id}/retry`, done: "queued again", ask: "Run command #ID again?" },
  drop: { path: (id) => `api/commands/${id}/drop`, done: "dropped", ask: "Give up on command #ID?" },
  approve: { path: () => "api/held/approve", done: "approved", ask: "Let held command #ID run?" },
  deny: { path: () => "api/held/deny", done: "denied", ask: "Deny held command #ID (it will not run)?" },
};

export function actionButton(action, commandId) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `action ${action}`;
  button.textContent = action;
  button.dataset.action = action;
  button.dataset.command = String(commandId);
  button.dataset.testid = `${action}-${commandId}`;
  return button;
}

function show(result, state, text) {
  result.hidden = false;
  result.dataset.result = state;
  result.textContent = text;
}

async function detailOf(answer) {
  try {
    const body = await answer.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${answer.status}`;
}

// approve/deny answer {"changed": n}: 0 when the command was no longer held. Else null.
async function changedOf(action, answer) {
  if (action !== "approve" && action !== "deny") return null;
  try {
    const body = await answer.json();
    return typeof body.changed === "number" ? body.changed : null;
  } catch {
    return null;
  }
}

// Sends one action; shows what came of it in `result`; `after` runs on success.
export async function act(action, commandId, token, result, after) {
  const what = WHAT[action];
  if (!what) return;
  if (!window.confirm(what.ask.replace("ID", commandId))) return;
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = action === "approve" || action === "deny" ? JSON.stringify({ command_id: commandId }) : "{}";
  show(result, "busy", `${action} #${commandId}…`);
  let answer;
  try {
    answer = await fetch(what.path(commandId), { method: "POST", headers, body, cache: "no-store" });
  } catch (error) {
    show(result, "error", `${action} #${commandId}: the service did not answer`);
    return;
  }
  if (answer.ok) {
    if ((await changedOf(action, answer)) === 0) {
      // a 200 that decided nothing: another tab, operator or the CLI decided it first
      show(result, "error", `${action} #${commandId} not done: command #${commandId} is no longer held`);
    } else {
      show(result, "ok", `command #${commandId} ${what.done}`);
    }
    after();
    return;
  }
  const detail = await detailOf(answer);
  if (answer.status === 403 || answer.status === 401) {
    show(result, "refused", `${action} #${commandId} refused: ${detail}`);
    return;
  }
  show(result, "error", `${action} #${commandId} not done: ${detail}`);
}
