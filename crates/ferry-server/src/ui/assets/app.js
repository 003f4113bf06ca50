// ferry's dashboard: every page rendered from the JSON API (/api/v1), the answers scripts
// get; executions followed over its Server-Sent Events. No framework, no build step. Text
// from the server only ever becomes DOM text (never HTML), so nothing it says can run.
"use strict";

const ROLES = ["viewer", "operator", "approver", "admin"];
let me = null; // the session: name, role, groups, csrf

// ---- helpers ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function may(role) {
  return me && ROLES.indexOf(me.role) >= ROLES.indexOf(role);
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    if (me && me.csrf) init.headers["X-CSRF-Token"] = me.csrf;
    init.body = JSON.stringify(body || {});
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiFailure(401, "unauthenticated", "signed out");
  }
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (_) { doc = null; }
  if (!resp.ok && !(doc && resp.status === 409)) {
    const e = (doc && doc.error) || {};
    throw new ApiFailure(resp.status, e.code || "error", e.message || text || resp.statusText);
  }
  return doc;
}

const enc = encodeURIComponent;

function when(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function ago(ms) {
  if (!ms) return "—";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function duration(secs) {
  if (secs === null || secs === undefined) return "—";
  if (secs < 60) return secs.toFixed(secs < 10 ? 1 : 0) + " s";
  if (secs < 3600) return Math.round(secs / 60) + " min";
  if (secs < 86400) return (secs / 3600).toFixed(1) + " h";
  return (secs / 86400).toFixed(1) + " d";
}

// A release's version as people say it: a Lambda version `v3`, a task definition `orders-api:2`.
function version(v) {
  const s = String(v || "");
  const td = s.split(":task-definition/")[1];
  if (td) return td;
  return /^[0-9]+$/.test(s) ? "v" + s : s;
}

function short(rev) {
  return rev ? String(rev).slice(0, 10) : "—";
}

// Status as an icon and a word (never colour alone).
const STATUS = {
  Succeeded: ["ok", "✓", "Succeeded"],
  Deployed: ["ok", "✓", "Deployed"],
  Restored: ["ok", "↺", "Restored"],
  Failed: ["bad", "✕", "Failed"],
  RolledBack: ["bad", "↩", "Rolled back"],
  InProgress: ["run", "▶", "In progress"],
  AwaitingApproval: ["wait", "‖", "Awaiting approval"],
  Pending: ["idle", "○", "Pending"],
  Stopped: ["idle", "■", "Stopped"],
  Superseded: ["idle", "»", "Superseded"],
};

function status(s) {
  const [cls, icon, word] = STATUS[s] || ["idle", "•", s || "—"];
  return h("span", { class: "status " + cls }, h("span", { "aria-hidden": "true" }, icon), word);
}

function statusClass(s) {
  return (STATUS[s] || ["idle"])[0];
}

function notice(kind, text) {
  return h("div", { class: "notice " + kind, role: kind === "bad" ? "alert" : "status" }, text);
}

function main() {
  return document.getElementById("main");
}

function page(title, ...children) {
  document.title = title + " · ferry";
  const m = main();
  const flat = children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false);
  m.replaceChildren(h("h1", {}, title), ...flat);
}

function failure(e) {
  return notice("bad", e instanceof ApiFailure ? e.message : String(e));
}

// A button that calls `fn`, shows what the API answered, and is disabled meanwhile.
function actionButton(label, cls, out, fn) {
  const b = h("button", { type: "button", class: cls }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    out.replaceChildren();
    try {
      const msg = await fn();
      if (msg) out.replaceChildren(notice("ok", msg));
    } catch (e) {
      out.replaceChildren(failure(e));
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// ---- frame ------------------------------------------------------------------------------

function frame() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(h("a", { href: "/" }, "Overview"));
  if (may("admin")) nav.append(h("a", { href: "/audit" }, "Audit log"));
  const who = document.getElementById("who");
  const out = h("input", { type: "hidden", name: "csrf", value: me.csrf || "" });
  who.replaceChildren(
    h("span", {}, me.name + " · " + me.role),
    h("form", { method: "post", action: "/logout" }, out,
      h("button", { type: "submit", class: "secondary" }, "Sign out")),
  );
}

// ---- pages ------------------------------------------------------------------------------

async function overview() {
  const pipelines = await api("GET", "/api/v1/pipelines");
  const cards = [];
  for (const p of pipelines) {
    const last = p.last_execution;
    const card = h("section", { class: "card", "aria-labelledby": "p-" + p.name },
      h("h2", { id: "p-" + p.name }, p.name),
      h("p", { class: "muted" }, p.repo + " · " + p.branch),
      last
        ? h("p", { class: "row" }, "Last execution ", h("a", { href: "/executions/" + enc(last.id) }, last.id),
          status(last.status), h("span", { class: "muted" }, short(last.revision) + " · " + ago(last.created_ms)))
        : h("p", { class: "muted" }, "No execution yet: push to " + p.branch + " to start one."),
      h("p", { class: "row" },
        h("a", { href: "/pipelines/" + enc(p.name) + "/history" }, "History"),
        h("a", { href: "/pipelines/" + enc(p.name) + "/releases" }, "Releases"),
        h("a", { href: "/pipelines/" + enc(p.name) + "/delivery" }, "Delivery metrics")),
    );
    const matrix = h("div", { class: "scroll" }, h("p", { class: "muted" }, "Reading what runs where…"));
    card.append(h("h3", {}, "What runs where"), matrix);
    cards.push(card);
    // The ledger at once; then what the accounts run, which takes a call per deploy.
    const base = "/api/v1/pipelines/" + enc(p.name) + "/environments";
    api("GET", base)
      .then((envs) => {
        matrix.replaceChildren(whereTable(envs));
        return api("GET", base + "?live=true");
      })
      .then((envs) => { matrix.replaceChildren(whereTable(envs)); matrix.dataset.live = "true"; })
      .catch((e) => matrix.append(failure(e)));
  }
  page("Overview", pipelines.length ? h("div", { class: "stack" }, cards) : notice("wait", "This server runs no pipeline."));
}

// Environment × deploy target: the release running now in each.
function whereTable(envs) {
  const targets = [];
  for (const e of envs) for (const d of e.deploys) if (!targets.includes(d.action)) targets.push(d.action);
  if (!targets.length) return h("p", { class: "muted" }, "This pipeline deploys nothing.");
  const head = h("tr", {}, h("th", { scope: "col" }, "Deploy"), envs.map((e) => h("th", { scope: "col" }, e.environment)));
  const rows = targets.map((t) => h("tr", {}, h("th", { scope: "row" }, t), envs.map((e) => {
    const d = e.deploys.find((x) => x.action === t);
    if (!d) return h("td", { class: "muted" }, "—");
    const drift = d.drift
      ? h("div", { class: "status bad" }, h("span", { "aria-hidden": "true" }, "⚠"),
        "Drift: the account runs " + version(d.live.version))
      : d.live && d.live.error
        ? h("div", { class: "muted" }, "could not read the account: " + d.live.error)
        : d.live ? h("div", { class: "status ok" }, h("span", { "aria-hidden": "true" }, "✓"), "matches the account") : null;
    if (!d.current) return h("td", { class: "muted" }, "not deployed", drift);
    const c = d.current;
    return h("td", {}, drift,
      h("div", { class: "mono" }, version(c.version)), h("div", { class: "mono muted" }, short(c.revision)),
      h("div", { class: "muted" }, ago(c.created_ms) + (c.approved_by ? " · approved by " + c.approved_by : "")),
      d.latest_attempt ? h("div", {}, status(d.latest_attempt.outcome)) : null);
  })));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, rows));
}

function actionLogPath(id, stage, action) {
  return "/executions/" + enc(id) + "/log/" + enc(stage + "." + action);
}

async function execution(id) {
  const holder = h("div", {});
  const out = h("div", { "aria-live": "polite" });
  const live = h("p", { class: "muted", "aria-live": "polite" }, "");
  page("Execution " + id, live, out, holder);
  let view = null;
  const draw = (v) => {
    view = v;
    holder.replaceChildren(executionBody(v, out));
  };
  draw(await api("GET", "/api/v1/executions/" + enc(id)));
  // Live: every change of this execution redraws it from the API.
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try { draw(await api("GET", "/api/v1/executions/" + enc(id))); } catch (e) { out.replaceChildren(failure(e)); }
    }, 100);
  };
  const events = new EventSource("/api/v1/events?execution=" + enc(id));
  for (const kind of ["execution", "stage", "action", "waiting", "approval", "gates", "release", "resync"]) {
    events.addEventListener(kind, refresh);
  }
  events.onopen = () => { live.textContent = "Live: updates as the pipeline runs."; refresh(); };
  events.onerror = () => { live.textContent = "Reconnecting to live updates…"; };
  return view;
}

function executionBody(v, out) {
  const controls = h("div", { class: "row" });
  const running = ["InProgress", "AwaitingApproval", "Pending"].includes(v.status);
  if (may("operator") && running) {
    controls.append(actionButton("Stop", "danger", out, async () => {
      await api("POST", "/api/v1/executions/" + enc(v.id) + "/stop", {});
      return "Stopping: running actions finish first.";
    }));
  }
  const summary = h("dl", { class: "kv" },
    h("dt", {}, "Status"), h("dd", {}, status(v.status)),
    h("dt", {}, "Revision"), h("dd", { class: "mono" }, v.revision),
    h("dt", {}, "Trigger"), h("dd", {}, v.trigger),
    h("dt", {}, "Started"), h("dd", {}, when(v.created_ms)),
    v.reason ? [h("dt", {}, "Why"), h("dd", {}, v.reason)] : null,
  );
  const waiting = v.pending_approvals.map((a) => notice("wait", [
    "Stage " + a.stage + " waits for approval of " + a.action + " (until " + when(a.deadline_ms) + "). ",
    h("a", { href: "/executions/" + enc(v.id) + "/review/" + enc(a.stage) + "?action=" + enc(a.action) }, "Review what it releases and decide"),
  ]));
  // Entry gates (alarms, windows, soak): what holds a stage, and who let a release past them.
  const gates = (v.gates || []).map((g) => {
    if (g.overridden) {
      return notice("ok", "Gates of " + g.stage + " overridden by " + g.overridden.identity + ": " + g.overridden.reason);
    }
    if (!g.holds.length || !running) return null;
    let decide = null;
    if (may("approver")) {
      const reason = h("input", { type: "text", id: "reason-" + g.stage, name: "reason", placeholder: "Why: the ledger keeps it" });
      decide = h("div", { class: "row" },
        h("label", { for: "reason-" + g.stage }, "Reason"), reason,
        actionButton("Override the gates", "danger", out, async () => {
          await api("POST", "/api/v1/executions/" + enc(v.id) + "/stages/" + enc(g.stage) + "/override", { reason: reason.value });
          return "Overridden: " + g.stage + " goes on.";
        }));
    }
    return notice("wait", ["Stage " + g.stage + " is held by its gates (recorded " + ago(g.checked_ms) + "):",
      h("ul", {}, g.holds.map((x) => h("li", {}, x))), decide]);
  });
  const stages = h("div", { class: "stages", role: "list", "aria-label": "Stages, in order" }, v.stages.map((s) => {
    const retry = may("operator") && ["Failed", "Stopped"].includes(s.status) && !running
      ? actionButton("Retry", "secondary", out, async () => {
        await api("POST", "/api/v1/executions/" + enc(v.id) + "/retry", { stage: s.name });
        return "Retrying " + s.name + ".";
      })
      : null;
    return h("section", { class: "stage s-" + statusClass(s.status), role: "listitem", "aria-label": "Stage " + s.name },
      h("header", {}, h("h3", {}, s.name), status(s.status)),
      h("ol", {}, s.actions.map((a) => h("li", { class: "action" },
        h("div", { class: "row" }, h("strong", {}, a.name), status(a.status)),
        h("div", { class: "meta" }, a.kind
          + (a.attempt ? " · attempt " + a.attempt : "")
          + (a.started_ms ? " · " + duration(((a.ended_ms || Date.now()) - a.started_ms) / 1000) : "")),
        a.error ? h("div", { class: "error" }, a.error) : null,
        a.log ? h("a", { href: actionLogPath(v.id, s.name, a.name) }, "Log") : null,
      ))),
      retry ? h("div", { class: "row" }, retry) : null,
    );
  }));
  return h("div", {}, summary, controls, waiting, gates, h("h2", {}, "Stages"), stages);
}

// ANSI SGR colours and bold as classes; every other escape is dropped.
function ansiLine(text) {
  const div = document.createElement("div");
  const re = /\x1b\[([0-9;]*)m/g;
  let last = 0, classes = [], m;
  const push = (s) => {
    if (!s) return;
    if (!classes.length) { div.append(s); return; }
    const span = document.createElement("span");
    span.className = classes.join(" ");
    span.textContent = s;
    div.append(span);
  };
  while ((m = re.exec(text))) {
    push(text.slice(last, m.index));
    last = re.lastIndex;
    for (const code of (m[1] || "0").split(";").map(Number)) {
      if (code === 0) classes = [];
      else if (code === 1) classes.push("a-b");
      else if (code >= 30 && code <= 37) classes = classes.filter((c) => !/^a-3/.test(c)).concat("a-" + code);
      else if (code >= 90 && code <= 97) classes = classes.filter((c) => !/^a-3/.test(c)).concat("a-" + (code - 60));
      else if (code === 39) classes = classes.filter((c) => !/^a-3/.test(c));
    }
  }
  push(text.slice(last).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""));
  div.dataset.text = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").toLowerCase();
  return div;
}

function logUrl(id, action) {
  return "/api/v1/executions/" + enc(id) + "/actions/" + enc(action) + "/log";
}

// The log page asks for the log while it asks who is signed in: the log is what it is for.
let earlyLog = null;

async function logPage(id, action) {
  const url = logUrl(id, action);
  const box = h("div", { class: "log", role: "log", "aria-label": "Log of " + action, tabindex: "0" });
  const search = h("input", { type: "search", id: "search", placeholder: "Find in the log" });
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const state = h("span", { class: "muted", "aria-live": "polite" }, "Following the log…");
  page("Log of " + action,
    h("p", {}, h("a", { href: "/executions/" + enc(id) }, "← Execution " + id)),
    h("div", { class: "logbar" },
      h("label", { for: "search" }, "Search"), search, count,
      h("a", { class: "button", href: url, download: id + "-" + action + ".log" }, "Download"), state),
    box);
  let partial = "";
  let query = "";
  const apply = (div) => {
    const hit = !query || div.dataset.text.includes(query);
    div.classList.toggle("hidden", !hit);
    return hit;
  };
  const addText = (chunk) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop();
    const frag = document.createDocumentFragment();
    for (const l of lines) { const d = ansiLine(l); apply(d); frag.append(d); }
    // Follow the tail only once the reader is at it (reading the layout before the first
    // chunk would lay out the whole log before anything shows).
    const atEnd = box.childElementCount > 0 && box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(frag);
    if (atEnd && !query) box.scrollTop = box.scrollHeight;
    rendered();
  };
  search.addEventListener("input", () => {
    query = search.value.toLowerCase();
    let n = 0;
    for (const d of box.children) if (apply(d)) n++;
    count.textContent = query ? n + " matching lines" : "";
  });
  const resp = await (earlyLog || fetch(url + "?follow=true", { credentials: "same-origin" }));
  if (!resp.ok) {
    const doc = await resp.json().catch(() => ({}));
    box.replaceWith(failure(new ApiFailure(resp.status, "", (doc.error && doc.error.message) || resp.statusText)));
    return;
  }
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    addText(dec.decode(value, { stream: true }));
  }
  if (partial) addText("\n");
  state.textContent = "The action has ended; this is its whole log.";
}

async function review(id, stage) {
  const r = await api("GET", "/api/v1/executions/" + enc(id) + "/stages/" + enc(stage) + "/review");
  const v = r.execution;
  // A stage may hold several approvals: the one the link named, else its first.
  const named = new URLSearchParams(location.search).get("action");
  const here = v.pending_approvals.filter((a) => a.stage === stage);
  const pending = here.find((a) => a.action === named) || here[0];
  const env = r.environment;
  const out = h("div", { "aria-live": "polite" });
  // Each deploy: the release running now, and what this execution puts in its place.
  const after = (c) => {
    if (c.error) return h("td", { class: "error" }, c.error);
    const lines = [];
    for (const i of c.images) {
      lines.push(h("div", { class: "mono" }, (i.container ? i.container + ": " : "") + (i.now === i.next ? "image unchanged " + i.next : (i.now || "—") + " → " + i.next)));
    }
    if (c.code) {
      lines.push(h("div", { class: "mono" }, "code SHA-256 " + (c.code.now === c.code.next ? "unchanged " + c.code.next : (c.code.now || "—") + " → " + c.code.next)));
    }
    return h("td", {}, h("strong", {}, c.changed ? "Changes" : "Nothing changes"), lines);
  };
  const changes = r.changes.length
    ? h("table", {},
      h("thead", {}, h("tr", {}, ["Deploy", "Running now", "Revision now", "After approval (revision " + short(v.revision) + ")"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, r.changes.map((c) => h("tr", {},
        h("th", { scope: "row" }, c.action, h("div", { class: "mono muted" }, c.target)),
        h("td", { class: "mono" }, c.now ? version(c.now.version) : "nothing yet"),
        h("td", { class: "mono" }, c.now ? short(c.now.revision) : "—"),
        after(c),
      ))))
    : h("p", { class: "muted" }, r.changes_error ? "What changes could not be read: " + r.changes_error : "This stage deploys nothing.");
  const digests = Object.entries(r.digests);
  const check = r.check
    ? (r.check.ok
      ? notice("ok", "Access check: all " + r.check.edges + " calls this release makes are allowed ("
        + (r.check.against === "last_read" ? "against the policies read from the accounts " + when(r.check.read_ms) : "against the plan's own policies; the accounts were not read from this server") + ").")
      : notice("bad", ["Access check: " + r.check.denied.length + " call(s) would be denied: ",
        h("ul", {}, r.check.denied.map((d) => h("li", {}, d.action + " on " + d.resource + " as " + d.principal + ": " + d.reason)))]))
    : null;
  const decide = [];
  if (pending && may("approver")) {
    const comment = h("textarea", { id: "comment", name: "comment" });
    const send = (approve) => async () => {
      const report = await api("POST", "/api/v1/executions/" + enc(id) + "/stages/" + enc(stage) + "/" + (approve ? "approve" : "reject"), { comment: comment.value || null, action: pending.action });
      const a = report && report.approval;
      const votes = a && a.votes ? a.votes.length : 0;
      return approve
        ? (a && a.status === "Approved" ? "Approved. The release goes on." : "Your approval is recorded (" + votes + " of " + (a ? a.required : "?") + ").")
        : "Rejected.";
    };
    decide.push(h("h2", {}, "Decide"),
      h("label", { for: "comment" }, "Comment"), comment,
      h("div", { class: "row" },
        actionButton("Approve", "", out, send(true)),
        actionButton("Reject", "danger", out, send(false))));
  } else if (pending) {
    decide.push(notice("wait", "You may watch but not decide: approving needs an approver's token."));
  } else {
    decide.push(notice("ok", "Nothing waits for approval in " + stage + " now."));
  }
  page("Approve " + stage + " for " + id,
    h("p", {}, h("a", { href: "/executions/" + enc(id) }, "← Execution " + id)),
    h("dl", { class: "kv" },
      h("dt", {}, "Environment"), h("dd", {}, env ? env.environment + " (account " + env.account + ")" : "—"),
      h("dt", {}, "Revision"), h("dd", { class: "mono" }, v.revision),
      h("dt", {}, "Trigger"), h("dd", {}, v.trigger),
      pending ? [h("dt", {}, "Who may approve"), h("dd", {}, pending.approvers.length ? pending.approvers.join(", ") : "any approver"),
        h("dt", {}, "Decide before"), h("dd", {}, when(pending.deadline_ms))] : null),
    h("h2", {}, "What changes in " + (env ? env.environment : stage)), h("div", { class: "scroll" }, changes),
    h("h2", {}, "The artifacts you approve"),
    digests.length
      ? h("table", {}, h("tbody", {}, digests.map(([n, d]) => h("tr", {}, h("th", { scope: "row" }, n), h("td", { class: "mono" }, "sha256:" + d)))))
      : h("p", { class: "muted" }, "No artifact."),
    h("h2", {}, "Access"), check,
    decide, out);
}

async function releases(pipeline) {
  const envs = await api("GET", "/api/v1/pipelines/" + enc(pipeline) + "/environments");
  const sections = [];
  for (const e of envs) {
    const out = h("div", { "aria-live": "polite" });
    const body = h("div", { class: "scroll" }, h("p", { class: "muted" }, "Reading the ledger…"));
    const load = async () => {
      const r = await api("GET", "/api/v1/environments/" + enc(pipeline) + "/" + enc(e.environment) + "/releases");
      body.replaceChildren(r.releases.length
        ? h("table", {},
          h("thead", {}, h("tr", {}, ["When", "Deploy", "Version", "Revision", "Outcome", "Verified", "Approved by", "Execution"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, r.releases.map((x) => h("tr", {},
            h("td", {}, when(x.created_ms)), h("td", { class: "mono" }, x.target), h("td", { class: "mono" }, version(x.version)),
            h("td", { class: "mono" }, short(x.revision)), h("td", {}, status(x.outcome)),
            h("td", {}, x.verified ? "✓ yes" : "✕ no"), h("td", {}, x.approved_by || "—"),
            h("td", {}, h("a", { href: "/executions/" + enc(x.execution_id) }, x.execution_id),
              x.blocked ? h("div", { class: "error" }, "⛔ Blocked: " + x.blocked) : null)))))
        : h("p", { class: "muted" }, "Nothing released here yet."));
    };
    // Each deploy back to its last release verified good, or all of the environment's.
    const rollback = (label, what, target) => actionButton(label, "danger", out, async () => {
      if (!confirm("Return " + what + " to its last release verified good?")) return "";
      const report = await api("POST", "/api/v1/environments/" + enc(pipeline) + "/" + enc(e.environment) + "/rollback", target ? { target } : {});
      await load();
      const lines = (report.results || []).map((x) => (x.target || e.environment) + ": "
        + (x.error ? "not rolled back: " + x.error : "back on version " + x.version + (x.replaced ? " (was " + x.replaced + ")" : "")));
      if (report.results && report.results.some((x) => x.error)) throw new ApiFailure(409, "rollback", lines.join("; "));
      return lines.join("; ") || "Nothing to roll back.";
    });
    const deployed = e.deploys.filter((d) => d.current);
    const controls = may("operator") && deployed.length
      ? h("div", { class: "row" },
        rollback("Roll back " + e.environment, "every deploy of " + e.environment),
        deployed.map((d) => rollback("Roll back " + d.action, d.action + " in " + e.environment, d.action)))
      : null;
    sections.push(h("section", { "aria-labelledby": "env-" + e.environment },
      h("h2", { id: "env-" + e.environment }, e.environment), controls, out, body));
    load().catch((err) => body.replaceChildren(failure(err)));
  }
  page("Releases of " + pipeline, sections);
}

async function history(pipeline) {
  const params = new URLSearchParams(location.search);
  const field = (name, label, input) => h("div", {}, h("label", { for: "f-" + name }, label), input);
  const statusSel = h("select", { id: "f-status", name: "status" },
    h("option", { value: "" }, "any"), Object.keys(STATUS).filter((s) => !["Deployed", "Restored"].includes(s))
      .map((s) => h("option", { value: s, selected: params.get("status") === s }, STATUS[s][2])));
  const form = h("form", { method: "get", class: "row" },
    field("status", "Status", statusSel),
    field("branch", "Branch", h("input", { id: "f-branch", name: "branch", value: params.get("branch") || "" })),
    field("trigger", "Trigger", h("input", { id: "f-trigger", name: "trigger", value: params.get("trigger") || "" })),
    h("div", {}, h("label", {}, " "), h("button", { type: "submit" }, "Filter")));
  const q = new URLSearchParams();
  for (const k of ["status", "branch", "trigger"]) if (params.get(k)) q.set(k, params.get(k));
  const rows = await api("GET", "/api/v1/pipelines/" + enc(pipeline) + "/executions?" + q.toString());
  page("History of " + pipeline, form,
    rows.length
      ? h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Execution", "Status", "Revision", "Branch", "Trigger", "Started"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows.map((x) => h("tr", {},
          h("td", {}, h("a", { href: "/executions/" + enc(x.id) }, x.id)), h("td", {}, status(x.status)),
          h("td", { class: "mono" }, short(x.revision)), h("td", {}, x.branch || "—"), h("td", {}, x.trigger),
          h("td", {}, when(x.created_ms)))))))
      : h("p", { class: "muted" }, "No execution matches."));
}

function bars(values, cls, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 " + values.length * 10 + " 50");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label + ": " + values.map((v) => (v === null ? "none" : Math.round(v * 10) / 10)).join(", "));
  const max = Math.max(1, ...values.map((v) => v || 0));
  values.forEach((v, i) => {
    const r = document.createElementNS(ns, "rect");
    const height = v ? Math.max(1, (v / max) * 48) : 0;
    r.setAttribute("x", i * 10 + 1);
    r.setAttribute("width", 8);
    r.setAttribute("y", 50 - height);
    r.setAttribute("height", height);
    r.setAttribute("class", cls);
    svg.append(r);
  });
  return svg;
}

async function delivery(pipeline) {
  const r = await api("GET", "/api/v1/pipelines/" + enc(pipeline) + "/delivery?weeks=8");
  const pct = (x) => (x === null || x === undefined ? "—" : Math.round(x * 100) + " %");
  page("Delivery metrics of " + pipeline,
    h("p", { class: "muted" }, "The four DORA measures from the release ledger, " + when(r.from_ms) + " to " + when(r.to_ms) + "; bars are weeks, oldest first."),
    r.environments.map((e) => h("section", { "aria-labelledby": "d-" + e.environment },
      h("h2", { id: "d-" + e.environment }, e.environment),
      h("div", { class: "measures" },
        h("div", { class: "card" }, h("h3", {}, "Deployment frequency"),
          h("div", { class: "figure" }, e.deployments_per_week.toFixed(1) + " / week"),
          h("div", { class: "muted" }, e.deployments + (e.deployments === 1 ? " successful deployment" : " successful deployments")),
          bars(e.weeks.map((w) => w.deployments), "bar", "deployments per week")),
        h("div", { class: "card" }, h("h3", {}, "Lead time for changes"),
          h("div", { class: "figure" }, duration(e.lead_time_median_secs)),
          h("div", { class: "muted" }, "median, commit to " + e.environment),
          bars(e.weeks.map((w) => w.lead_time_median_secs), "bar", "median lead time per week, seconds")),
        h("div", { class: "card" }, h("h3", {}, "Change failure rate"),
          h("div", { class: "figure" }, pct(e.change_failure_rate)),
          h("div", { class: "muted" }, "deployments that failed or were rolled back"),
          bars(e.weeks.map((w) => w.failures), "fail", "failed deployments per week")),
        h("div", { class: "card" }, h("h3", {}, "Time to restore"),
          h("div", { class: "figure" }, duration(e.time_to_restore_median_secs)),
          h("div", { class: "muted" }, "median, failure to a good version in place"))))));
}

async function audit() {
  const rows = await api("GET", "/api/v1/audit?limit=200");
  page("Audit log", h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["When", "Who", "Did", "On", "From", "Result"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((x) => h("tr", {},
      h("td", {}, when(x.at_ms)), h("td", {}, x.identity), h("td", {}, x.action), h("td", { class: "mono" }, x.target),
      h("td", { class: "mono" }, x.client), h("td", {}, x.status + " " + x.result)))))));
}

// The page shows what it is for: the mark tests wait for, and when (ms since navigation).
function rendered() {
  if (document.body.dataset.ready) return;
  document.body.dataset.renderedMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
}

// ---- routing ----------------------------------------------------------------------------

const ROUTES = [
  [/^\/$/, () => overview()],
  [/^\/executions\/([^/]+)$/, (m) => execution(m[1])],
  [/^\/executions\/([^/]+)\/log\/([^/]+)$/, (m) => logPage(m[1], m[2])],
  [/^\/executions\/([^/]+)\/review\/([^/]+)$/, (m) => review(m[1], m[2])],
  [/^\/pipelines\/([^/]+)\/releases$/, (m) => releases(m[1])],
  [/^\/pipelines\/([^/]+)\/history$/, (m) => history(m[1])],
  [/^\/pipelines\/([^/]+)\/delivery$/, (m) => delivery(m[1])],
  [/^\/audit$/, () => audit()],
];

async function start() {
  const log = location.pathname.match(/^\/executions\/([^/]+)\/log\/([^/]+)$/);
  if (log) {
    earlyLog = fetch(logUrl(decodeURIComponent(log[1]), decodeURIComponent(log[2])) + "?follow=true", { credentials: "same-origin" });
  }
  try {
    me = await api("GET", "/api/v1/session");
  } catch (e) {
    main().replaceChildren(failure(e));
    return;
  }
  frame();
  const path = location.pathname;
  for (const [re, render] of ROUTES) {
    const m = path.match(re);
    if (m) {
      try {
        await render(m.map((x) => (x === undefined ? x : decodeURIComponent(x))));
      } catch (e) {
        main().replaceChildren(h("h1", {}, "Something went wrong"), failure(e));
      }
      rendered();
      return;
    }
  }
  page("Not found", h("p", {}, "No page here. ", h("a", { href: "/" }, "Go to the overview.")));
  rendered();
}

start();
