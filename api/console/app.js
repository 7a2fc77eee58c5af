// MedGemma Spatial lab console: plain JavaScript, no build step.
// Talks to the same REST API as a LIMS (/v1/...), with the API key as a Bearer token.
// The key lives in sessionStorage (this tab only). Everything from the server is put on
// the page with textContent, never as HTML.
"use strict";

const KEY_STORAGE = "mgs_api_key";
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const POLL_MS = 2000;

let pollTimer = null;
let blobUrls = [];

// ------------------------------------------------------------------ helpers
function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function apiKey() { return sessionStorage.getItem(KEY_STORAGE); }

function authHeaders(extra) {
  return Object.assign({ Authorization: "Bearer " + apiKey() }, extra || {});
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || ("HTTP " + status));
    this.status = status;
    this.code = problem && problem.code;
  }
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = authHeaders(opts.headers);
  const resp = await fetch(path, opts);
  if (resp.status === 401) { signOut("Your key was refused (revoked or mistyped). Sign in again."); }
  if (!resp.ok) {
    let problem = null;
    try { problem = await resp.json(); } catch (e) { /* not a problem document */ }
    throw new ApiError(resp.status, problem);
  }
  return resp;
}

function showError(node, err) {
  node.textContent = err ? (err.code ? err.code + ": " : "") + err.message : "";
  node.hidden = !err;
}

function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function fmtBytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return n.toFixed(1) + " " + units[i];
}

function stopPolling() { if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; } }

function releaseBlobs() { blobUrls.forEach(URL.revokeObjectURL); blobUrls = []; }

// ------------------------------------------------------------------ sign in / out
async function signIn(ev) {
  ev.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  showError($("sign-in-error"), null);
  const resp = await fetch("/v1/jobs?limit=1", { headers: { Authorization: "Bearer " + key } });
  if (resp.status === 401) {
    showError($("sign-in-error"), new Error("This key is not valid (unknown or revoked)."));
    return;
  }
  if (!resp.ok) {
    showError($("sign-in-error"), new Error("The service answered " + resp.status + "; try again."));
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("api-key").value = "";
  route();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  stopPolling();
  location.hash = "#/";
  route();
  if (message) showError($("sign-in-error"), new Error(message));
}

// ------------------------------------------------------------------ routing
function show(viewId) {
  for (const id of ["sign-in-view", "jobs-view", "job-view"]) $(id).hidden = id !== viewId;
}

function route() {
  stopPolling();
  releaseBlobs();
  const key = apiKey();
  $("whoami").hidden = !key;
  if (!key) { show("sign-in-view"); $("api-key").focus(); return; }
  $("key-prefix").textContent = "key " + key.slice(0, 12) + "…";
  const m = location.hash.match(/^#\/jobs\/([0-9a-f-]{36})$/);
  if (m) { show("job-view"); openJob(m[1]); }
  else { show("jobs-view"); refreshJobs(); }
}

// ------------------------------------------------------------------ upload + submit
function uploadFile(file, onProgress) {
  // XHR rather than fetch: upload.onprogress drives the progress bar
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/uploads?filename=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Authorization", "Bearer " + apiKey());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* empty */ }
      if (xhr.status === 201) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("the upload was interrupted (network error)"));
    xhr.send(file);
  });
}

async function submitSample(ev) {
  ev.preventDefault();
  const file = $("sample-file").files[0];
  if (!file) return;
  const button = $("upload-button");
  button.disabled = true;
  showError($("upload-error"), null);
  $("upload-status").hidden = false;
  const bar = $("upload-progress");
  bar.value = 0;
  $("upload-text").textContent = "uploading " + file.name;
  try {
    const up = await uploadFile(file, (loaded, total) => {
      bar.value = Math.round((100 * loaded) / total);
      $("upload-text").textContent = loaded < total
        ? "uploading " + file.name + ": " + fmtBytes(loaded) + " of " + fmtBytes(total)
        : "uploaded " + fmtBytes(total) + "; the server is checking the file…";
    });
    bar.value = 100;
    $("upload-text").textContent = "uploaded (" + fmtBytes(up.size) + "), submitting…";
    const options = {};
    if ($("backend").value) options.backend = $("backend").value;
    const body = { upload_id: up.id, options: options };
    const sampleId = $("sample-id").value.trim();
    if (sampleId) body.external_sample_id = sampleId;
    const resp = await api("/v1/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": "console-" + up.id },
      body: JSON.stringify(body),
    });
    const job = await resp.json();
    $("upload-text").textContent = "submitted job " + job.id;
    $("upload-form").reset();
    await refreshJobs();
  } catch (err) {
    showError($("upload-error"), err);
    $("upload-text").textContent = "";
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ job list
function progressBar(value) {
  const p = el("progress", { max: "1" });
  p.value = value || 0;
  return p;
}

function stateCell(job) {
  return el("td", { class: "state state-" + job.state, "data-field": "state", text: job.state });
}

async function refreshJobs() {
  stopPolling();
  try {
    const page = await (await api("/v1/jobs?limit=50")).json();
    const tbody = $("jobs-table").querySelector("tbody");
    tbody.replaceChildren(...page.items.map((job) => el("tr", { "data-job": job.id },
      el("td", { text: fmtTime(job.created_at) }),
      el("td", { text: job.external_sample_id || "" }),
      stateCell(job),
      el("td", { "data-field": "stage", text: job.stage || "" }),
      el("td", {}, progressBar(job.progress)),
      el("td", {}, el("a", { href: "#/jobs/" + job.id, text: "open" })))));
    $("jobs-empty").hidden = page.items.length > 0;
    showError($("jobs-error"), null);
    if (page.items.some((j) => !TERMINAL.has(j.state))) {
      pollTimer = setTimeout(refreshJobs, POLL_MS);
    }
  } catch (err) {
    if (!apiKey()) return;
    showError($("jobs-error"), err);
    pollTimer = setTimeout(refreshJobs, POLL_MS * 2);
  }
}

// ------------------------------------------------------------------ one job
function summaryRows(job) {
  const rows = [
    ["state", job.state], ["stage", job.stage || "–"],
    ["progress", Math.round((job.progress || 0) * 100) + " %"],
    ["sample id", job.external_sample_id || "–"], ["attempts", job.attempts],
    ["created", fmtTime(job.created_at)], ["started", fmtTime(job.started_at) || "–"],
    ["finished", fmtTime(job.finished_at) || "–"],
    ["report by", (job.options && job.options.backend) || "server default"],
  ];
  return rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-field": k, text: String(v) })]);
}

async function openJob(id) {
  $("job-id").textContent = id;
  $("report").hidden = true;
  $("artifacts").hidden = true;
  showError($("job-error"), null);
  const cancel = $("cancel-job");
  cancel.onclick = async () => {
    try { await api("/v1/jobs/" + id + "/cancel", { method: "POST" }); } catch (err) { showError($("job-error"), err); }
    pollJob(id);
  };
  pollJob(id);
}

async function pollJob(id) {
  stopPolling();
  let job;
  try {
    job = await (await api("/v1/jobs/" + id)).json();
  } catch (err) {
    if (!apiKey()) return;
    showError($("job-error"), err);
    if (err.status !== 404) pollTimer = setTimeout(() => pollJob(id), POLL_MS * 2);
    return;
  }
  if (location.hash !== "#/jobs/" + id) return;  // navigated away meanwhile
  $("job-summary").replaceChildren(...summaryRows(job));
  $("job-summary").dataset.state = job.state;
  $("job-progress").value = job.progress || 0;
  $("cancel-job").hidden = TERMINAL.has(job.state);
  if (job.error) showError($("job-error"), Object.assign(new Error(job.error.detail), { code: job.error.code }));
  if (!TERMINAL.has(job.state)) { pollTimer = setTimeout(() => pollJob(id), POLL_MS); return; }
  if (job.state === "succeeded") {
    try { await showReport(id); } catch (err) { showError($("job-error"), err); }
  }
}

// ------------------------------------------------------------------ the report
// A number as core/report/render.py finds them: sign, thousands separators, decimals, percent.
const NUM = /(?<![A-Za-z0-9_.\-])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)(\s?%|\s?percent)?(?![A-Za-z0-9_]|\.\d)/g;
const ORDINAL = /^\s*(?:[-*]\s*)?(?:Q)?\d+[.)]\s/gm;

function markedNarrative(text, unverified) {
  // the narrative as text nodes, each unverified number wrapped in <mark class="unverified">
  const frag = document.createDocumentFragment();
  const wanted = new Set(unverified || []);
  const ordinals = [...text.matchAll(ORDINAL)].map((m) => [m.index, m.index + m[0].length]);
  let pos = 0;
  for (const m of text.matchAll(NUM)) {
    if (ordinals.some(([a, b]) => a <= m.index && m.index < b)) continue;
    const written = m[0].trim();
    if (!wanted.has(written)) continue;
    frag.append(text.slice(pos, m.index));
    frag.append(el("mark", { class: "unverified", title: "matches no computed value", text: m[0] }));
    pos = m.index + m[0].length;
  }
  frag.append(text.slice(pos));
  return frag;
}

function isRowList(v) {
  return Array.isArray(v) && v.length > 0 && v.every((r) => r && typeof r === "object" && !Array.isArray(r));
}

function fmtValue(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 10000) / 10000);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) return v.map(fmtValue).join(", ");
  return null;
}

function computedNode(value, nested) {
  // a computed value as tables: objects as key/value rows, lists of objects as tables
  if (Array.isArray(value) && value.some((x) => typeof x === "string" && x.length > 40)) {
    return el("ul", {}, ...value.map((v) => el("li", {}, computedNode(v, true))));
  }
  const scalar = fmtValue(value);
  if (scalar !== null) return document.createTextNode(scalar);
  if (isRowList(value)) {
    const cols = [...new Set(value.flatMap((r) => Object.keys(r)))];
    return el("table", {},
      el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { text: c })))),
      el("tbody", {}, ...value.map((r) => el("tr", {}, ...cols.map((c) => el("td", {}, computedNode(r[c], true)))))));
  }
  if (Array.isArray(value)) return el("ul", {}, ...value.map((v) => el("li", {}, computedNode(v, true))));
  const entries = Object.entries(value);
  if (entries.length === 0) {
    return nested ? document.createTextNode("–")
      : el("span", { class: "hint", text: "nothing computed for this section" });
  }
  return el("table", {}, el("tbody", {},
    ...entries.map(([k, v]) => el("tr", {}, el("th", { text: k.replaceAll("_", " ") }), el("td", {}, computedNode(v, true))))));
}

async function fetchBlobUrl(id, name) {
  const resp = await api("/v1/jobs/" + id + "/artifacts/" + name.split("/").map(encodeURIComponent).join("/"));
  const url = URL.createObjectURL(await resp.blob());
  blobUrls.push(url);
  return url;
}

async function showReport(id) {
  const [report, artifacts] = await Promise.all([
    api("/v1/jobs/" + id + "/report").then((r) => r.json()),
    api("/v1/jobs/" + id + "/artifacts").then((r) => r.json()),
  ]);
  const root = $("report");
  const src = report.narrative_source || {};
  const nUnverified = (report.provenance || {}).unverified_numbers;
  root.replaceChildren(
    el("h2", { text: "Report" }),
    el("p", { class: "disclaimer", text: report.disclaimer || "Research output, not a diagnosis." }),
    el("p", {},
      "Narrative ", el("strong", { text: src.label || "" }),
      " (backend ", el("code", { text: String(src.backend) }),
      src.model ? el("span", {}, ", model ", el("code", { text: String(src.model) })) : null,
      "). Computed tables come from the analysis; the narrative is shown apart from them. ",
      el("mark", { class: "unverified", text: "Highlighted" }),
      " numbers in the narrative match no computed value (unverified" +
        (nUnverified !== undefined ? ": " + nUnverified + " in this report" : "") + ")."));
  for (const s of report.sections || []) {
    const narrative = s.narrative
      ? el("div", { class: "narrative" }, markedNarrative(s.narrative, s.unverified_numbers))
      : el("div", { class: "narrative narrative-empty", text: "The narrative has nothing under this heading." });
    root.append(el("div", { class: "report-section", "data-section": s.id },
      el("h2", { text: s.title }),
      el("h3", { text: "Computed" }), el("div", { class: "computed" }, computedNode(s.computed)),
      el("h3", { text: "Narrative" }), narrative));
  }
  const un = report.narrative_unassigned || {};
  if (un.text) {
    root.append(el("div", { class: "report-section", "data-section": "unassigned" },
      el("h2", { text: "Narrative outside the report headings" }),
      el("div", { class: "narrative" }, markedNarrative(un.text, un.unverified_numbers))));
  }
  const figures = el("div", { id: "figures" });
  root.append(el("h2", { text: "Figures" }), figures);
  root.append(el("details", {}, el("summary", { text: "Provenance" }),
    el("pre", { text: JSON.stringify(report.provenance, null, 2) })));
  root.hidden = false;

  const list = $("artifact-list");
  list.replaceChildren(...artifacts.items.map((a) => el("li", {},
    el("button", { type: "button", class: "linkish", "data-artifact": a.name, text: a.name,
                   onclick: () => download(id, a.name) }),
    " ", el("span", { class: "hint", text: fmtBytes(a.size) }))));
  $("artifacts").hidden = false;

  // figures are fetched with the Bearer header and shown through blob: URLs; first the
  // H&E as the model saw it, when the report stage stored it
  const shown = (report.figures || []).slice();
  if (artifacts.items.some((a) => a.name === "he_model_input.png")) shown.unshift("he_model_input.png");
  for (const name of shown) {
    const img = el("img", { alt: name });
    const caption = name === "he_model_input.png" ? "H&E as sent to the model" : name.replace(/^figures\//, "");
    figures.append(el("figure", {}, img, el("figcaption", { text: caption })));
    try { img.src = await fetchBlobUrl(id, name); } catch (err) { img.alt = name + " (" + err.message + ")"; }
  }
  figures.dataset.loaded = String(shown.length);
}

async function download(id, name) {
  try {
    const url = await fetchBlobUrl(id, name);
    const a = el("a", { href: url, download: name.split("/").pop() });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    showError($("job-error"), err);
  }
}

// ------------------------------------------------------------------ start
document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(null));
  $("upload-form").addEventListener("submit", submitSample);
  window.addEventListener("hashchange", route);
  route();
});
