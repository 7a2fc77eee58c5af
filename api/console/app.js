// MedGemma Spatial lab console: plain JavaScript, no build step (docs/console.md says why).
// Talks to the same REST API as a LIMS (/v1/...), with the API key as a Bearer token.
// The key lives in sessionStorage (this tab only). Everything from the server is put on
// the page with textContent, never as HTML.
"use strict";

const KEY_STORAGE = "mgs_api_key";
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const POLL_MS = 2000;
const PAGE_SIZE = 50;
const LONG_POLLS = 3;          // browsers open ~6 connections per host: keep some free
const LONG_POLL_S = 25;
const IDLE_RECHECK_MS = 15000; // a succeeded row: its report status can still change (sign-off)
const NEW_JOBS_MS = 15000;

let pollTimer = null;
let blobUrls = [];
let me = null;            // GET /v1/me: role and limits
let jobOptionsSchema = null;

// ------------------------------------------------------------------ helpers
function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fill(node, ...kids) {
  // replaceChildren without the "null" text a skipped child would become
  node.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false));
}

function apiKey() { return sessionStorage.getItem(KEY_STORAGE); }

function authHeaders(extra) {
  return Object.assign({ Authorization: "Bearer " + apiKey() }, extra || {});
}

class ApiError extends Error {
  constructor(status, problem) {
    super(plainWords(status, problem));
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem;
  }
}

// The API's problem+json in words a lab user can act on; the code stays visible for support.
const PLAIN = {
  unauthorized: "This key was refused (unknown, revoked or mistyped).",
  upload_too_large: "The file is larger than this server accepts.",
  unsupported_format: "This is not a file the service reads: send an .h5ad, or a Space Ranger outs/ folder as .tar.gz, .tar or .zip.",
  corrupt_file: "The file is damaged or incomplete; export it again and retry.",
  upload_timeout: "The upload stalled (the connection sent nothing for too long); try again.",
  upload_range_conflict: "The server and this page disagree on how much of the file arrived; start the upload again.",
  upload_incomplete: "Part of the file did not arrive; start the upload again.",
  upload_session_not_found: "The server no longer has this upload (it expired); start it again.",
  bad_content_range: "The upload was sent in a way the server refuses (a bug in this page); please report it.",
  chunk_length_mismatch: "Part of the file arrived cut short; start the upload again.",
  rate_limited: "Too many requests from this key just now; wait a minute and retry.",
  too_many_active_jobs: "This lab already has as many jobs running as it may; wait for some to finish.",
  backend_not_allowed: "This server does not offer that report writer; pick another.",
  model_not_allowed: "This server does not offer that model.",
  forbidden_role: "Only a reviewer key can sign reports.",
  report_already_signed: "The report is already signed final; add an amendment with a comment instead.",
  report_not_final: "Sign the report final before amending it.",
  amendment_needs_comment: "An amendment needs a comment (the addendum).",
  reviewer_missing: "Name the pathologist who signs.",
  job_not_succeeded: "The job has not finished successfully, so there is no report yet.",
  job_not_found: "No such job for this lab.",
  service_unavailable: "The service is briefly unavailable; it will answer again shortly.",
  overlay_unavailable: "This job has no spot positions to draw over the image.",
};

function fieldName(loc) {
  const parts = (loc || []).filter((p) => p !== "body" && p !== "query");
  return parts.join(" → ") || "request";
}

function plainWords(status, problem) {
  if (!problem) return "The service answered HTTP " + status + ".";
  if (problem.code === "validation_error" && Array.isArray(problem.errors) && problem.errors.length) {
    return "Please fix: " + problem.errors.map((e) => fieldName(e.loc) + ": " + e.msg).join("; ") + ".";
  }
  const base = PLAIN[problem.code];
  const detail = problem.detail || problem.title || "";
  if (base && detail && base.indexOf(detail) < 0) return base + " (" + detail + ")";
  return base || detail || "The service answered HTTP " + status + ".";
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = authHeaders(opts.headers);
  const resp = await fetch(path, opts);
  if (resp.status === 401) { signOut("Your key was refused (revoked or mistyped). Sign in again."); }
  if (!resp.ok && resp.status !== 304) {
    let problem = null;
    try { problem = await resp.json(); } catch (e) { /* not a problem document */ }
    throw new ApiError(resp.status, problem);
  }
  return resp;
}

function showError(node, err) {
  node.replaceChildren();
  if (err) {
    node.append(err.message);
    if (err.code) node.append(" ", el("span", { class: "code", text: "(" + err.code + ")" }));
  }
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

function stopPolling() {
  if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  if (jobAbort) { jobAbort.abort(); jobAbort = null; }
}

function releaseBlobs() { blobUrls.forEach(URL.revokeObjectURL); blobUrls = []; }

// ------------------------------------------------------------------ sign in / out
async function loadMe() {
  me = await (await api("/v1/me")).json();
  $("key-role").textContent = me.role;
  $("upload-limit").textContent = "Largest file: " + fmtBytes(me.limits.max_upload_bytes) + ".";
}

async function signIn(ev) {
  ev.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  showError($("sign-in-error"), null);
  const resp = await fetch("/v1/me", { headers: { Authorization: "Bearer " + key } });
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
  me = null;
  stopPolling();
  watcher.stop();
  location.hash = "#/";
  route();
  if (message) showError($("sign-in-error"), new Error(message));
}

// ------------------------------------------------------------------ routing
function show(viewId) {
  for (const id of ["sign-in-view", "jobs-view", "job-view"]) $(id).hidden = id !== viewId;
  document.body.dataset.view = viewId;
}

async function route() {
  stopPolling();
  watcher.stop();
  releaseBlobs();
  destroyViewer();
  const key = apiKey();
  $("whoami").hidden = !key;
  if (!key) { show("sign-in-view"); $("api-key").focus(); return; }
  $("key-prefix").textContent = "key " + key.slice(0, 12) + "…";
  if (!me) {
    try { await loadMe(); } catch (err) { if (!apiKey()) return; }
  }
  const m = location.hash.match(/^#\/jobs\/([0-9a-f-]{36})$/);
  if (m) { show("job-view"); openJob(m[1]); }
  else { show("jobs-view"); loadOptionSchema(); refreshJobs(); }
}

// ------------------------------------------------------------------ options, as the API checks them
// The fields, bounds and allowed values come from the API's own OpenAPI document
// (components.schemas.JobOptions): one definition, the one the server validates with.
const OPTION_FIELDS = ["resolution", "seed", "n_domains", "tiles", "species", "prompt_strategy"];

function resolveRef(spec, s) {
  if (s && s.$ref) return spec.components.schemas[s.$ref.split("/").pop()];
  return s;
}

function plainSchema(spec, prop) {
  // JobOptions fields are either a schema or anyOf [schema, null]
  const alts = prop.anyOf ? prop.anyOf.map((a) => resolveRef(spec, a)) : [resolveRef(spec, prop)];
  const main = alts.find((a) => a && a.type !== "null") || {};
  return Object.assign({}, main, { nullable: alts.some((a) => a && a.type === "null"),
                                    default: prop.default, description: prop.description || main.description });
}

async function loadOptionSchema() {
  if (jobOptionsSchema) return;
  try {
    const spec = await (await fetch("/openapi.json")).json();
    const props = spec.components.schemas.JobOptions.properties;
    jobOptionsSchema = {};
    for (const name of Object.keys(props)) jobOptionsSchema[name] = plainSchema(spec, props[name]);
  } catch (err) { jobOptionsSchema = {}; return; }
  const box = $("option-fields");
  box.replaceChildren();
  for (const name of OPTION_FIELDS) {
    const s = jobOptionsSchema[name];
    if (!s) continue;
    const id = "opt-" + name;
    let input;
    if (s.enum) {
      input = el("select", { id, "data-option": name },
        ...(s.nullable ? [el("option", { value: "", text: "server default" })] : []),
        ...s.enum.map((v) => el("option", { value: v, text: v, selected: v === s.default })));
    } else {
      const step = s.type === "integer" ? "1" : "any";
      input = el("input", { id, type: "number", step, "data-option": name,
                            min: s.minimum, max: s.maximum,
                            placeholder: s.default !== undefined && s.default !== null ? String(s.default) : "automatic" });
    }
    box.append(el("div", { class: "row" },
      el("label", { for: id, text: name.replaceAll("_", " ") }), input,
      el("span", { class: "hint", id: id + "-hint", text: s.description || "" })));
    input.setAttribute("aria-describedby", id + "-hint");
  }
  // the backend select too: only the values the API takes
  const be = jobOptionsSchema.backend;
  if (be && be.enum) {
    for (const o of [...$("backend").options]) if (o.value && !be.enum.includes(o.value)) o.remove();
  }
}

function readOptions() {
  // {options} or throws an Error naming every field out of bounds (the API's own bounds)
  const options = {};
  const problems = [];
  if ($("backend").value) options.backend = $("backend").value;
  for (const input of document.querySelectorAll("[data-option]")) {
    const name = input.dataset.option;
    const s = (jobOptionsSchema || {})[name] || {};
    const raw = input.value.trim();
    if (raw === "") continue;
    if (s.enum) {
      if (!s.enum.includes(raw)) problems.push(name + ": must be one of " + s.enum.join(", "));
      else options[name] = raw;
      continue;
    }
    const v = Number(raw);
    if (!Number.isFinite(v)) { problems.push(name + ": must be a number"); continue; }
    if (s.type === "integer" && !Number.isInteger(v)) { problems.push(name + ": must be a whole number"); continue; }
    if (s.minimum !== undefined && v < s.minimum) problems.push(name + ": at least " + s.minimum);
    else if (s.maximum !== undefined && v > s.maximum) problems.push(name + ": at most " + s.maximum);
    else options[name] = v;
  }
  if (problems.length) throw Object.assign(new Error("Please fix: " + problems.join("; ") + "."), { code: "invalid_option" });
  return options;
}

const FORMATS = [".h5ad", ".zip", ".tar.gz", ".tgz", ".tar"];

function checkFile(file) {
  const name = file.name.toLowerCase();
  if (!FORMATS.some((ext) => name.endsWith(ext))) {
    throw Object.assign(new Error(PLAIN.unsupported_format), { code: "unsupported_format" });
  }
  if (file.size === 0) throw new Error("The file is empty.");
  if (me && file.size > me.limits.max_upload_bytes) {
    throw Object.assign(new Error(PLAIN.upload_too_large + " (" + fmtBytes(file.size) + "; the limit is "
      + fmtBytes(me.limits.max_upload_bytes) + ")"), { code: "upload_too_large" });
  }
}

// ------------------------------------------------------------------ upload + submit
let currentUpload = null;
let stopRequested = false; // the Stop button, also between chunks (no request in flight then)

const CHUNK_TRIES = 5; // tries of one chunk (network error, 408, 409, 429, 5xx) before giving up
const RETRYABLE = [408, 409, 429, 500, 502, 503, 504];

function uploadFile(file, onProgress) {
  // A file larger than one chunk goes through a resumable session (POST /v1/uploads/sessions):
  // File.slice per chunk, so nothing is read into this page's memory and a dropped connection
  // costs one chunk. A small file is one request.
  const chunk = me && me.limits.upload_chunk_bytes;
  if (chunk && file.size > chunk) return uploadChunked(file, onProgress);
  return uploadWhole(file, onProgress);
}

function sendChunk(url, blob, range, onProgress) {
  // XHR (not fetch) for upload progress; the Blob is streamed from disk by the browser.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    currentUpload = xhr;
    xhr.open("PUT", url);
    xhr.setRequestHeader("Authorization", "Bearer " + apiKey());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Content-Range", range);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* empty */ }
      if (xhr.status === 200) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("The upload was interrupted (network error); try again."));
    xhr.onabort = () => reject(Object.assign(new Error("Upload stopped."), { stopped: true }));
    xhr.send(blob);
  });
}

async function uploadChunked(file, onProgress) {
  stopRequested = false;
  const created = await api("/v1/uploads/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ filename: file.name, size: file.size }),
  });
  let session = await created.json();
  const url = "/v1/uploads/sessions/" + session.id;
  let failures = 0;
  while (session.received < file.size) {
    if (stopRequested) throw Object.assign(new Error("Upload stopped."), { stopped: true });
    const start = session.received;
    const end = Math.min(start + session.chunk_size, file.size);
    try {
      session = await sendChunk(url, file.slice(start, end),
        "bytes " + start + "-" + (end - 1) + "/" + file.size,
        (loaded) => onProgress(start + loaded, file.size));
      failures = 0;
    } catch (err) {
      const retryable = !err.stopped && !stopRequested && (!(err instanceof ApiError) || RETRYABLE.includes(err.status));
      if (!retryable || ++failures >= CHUNK_TRIES) throw err;
      onProgress(start, file.size, "connection trouble; retrying (" + failures + " of " + (CHUNK_TRIES - 1) + ")");
      await new Promise((r) => setTimeout(r, 1000 * 2 ** (failures - 1)));
      // resume where the server says it is (a chunk may have arrived though its answer did not)
      session = await (await api(url)).json();
    }
  }
  onProgress(file.size, file.size);
  const done = await api(url + "/complete", { method: "POST" });
  return done.json();
}

function uploadWhole(file, onProgress) {
  // XHR with the File itself as the body: the browser streams it from disk in chunks (the file
  // is never read into this page's memory) and upload.onprogress drives the bar.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    currentUpload = xhr;
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
    xhr.onerror = () => reject(new Error("The upload was interrupted (network error); try again."));
    xhr.onabort = () => reject(new Error("Upload stopped."));
    xhr.send(file);
  });
}

async function submitSample(ev) {
  ev.preventDefault();
  showError($("upload-error"), null);
  const file = $("sample-file").files[0];
  let options;
  try {
    if (!file) throw new Error("Choose a sample file first.");
    checkFile(file);
    options = readOptions();
  } catch (err) { showError($("upload-error"), err); return; }
  const button = $("upload-button");
  button.disabled = true;
  $("upload-abort").hidden = false;
  $("upload-status").hidden = false;
  const bar = $("upload-progress");
  bar.value = 0;
  $("upload-text").textContent = "uploading " + file.name;
  try {
    const up = await uploadFile(file, (loaded, total, note) => {
      bar.value = Math.round((100 * loaded) / total);
      $("upload-text").textContent = loaded < total
        ? "uploading " + file.name + ": " + fmtBytes(loaded) + " of " + fmtBytes(total) + (note ? " (" + note + ")" : "")
        : "uploaded " + fmtBytes(total) + "; the server is checking the file…";
    });
    bar.value = 100;
    $("upload-text").textContent = "uploaded (" + fmtBytes(up.size) + "), submitting…";
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
    currentUpload = null;
    button.disabled = false;
    $("upload-abort").hidden = true;
  }
}

// ------------------------------------------------------------------ job list
// Paging is keyset paging (the API's cursor): `cursors` holds the cursor of every page seen,
// so "previous" goes back without offsets.
const listState = { cursors: [null], page: 0, next: null, firstId: null };

function filterParams() {
  const p = new URLSearchParams();
  if ($("f-state").value) p.set("state", $("f-state").value);
  if ($("f-report").value) p.set("report_status", $("f-report").value);
  if ($("f-sample").value.trim()) p.set("external_sample_id", $("f-sample").value.trim());
  if ($("f-from").value) p.set("created_after", new Date($("f-from").value + "T00:00:00").toISOString());
  if ($("f-to").value) {
    const to = new Date($("f-to").value + "T00:00:00");
    to.setDate(to.getDate() + 1);  // the whole "to" day
    p.set("created_before", to.toISOString());
  }
  if ($("f-sort").value !== "-created_at") p.set("sort", $("f-sort").value);
  return p;
}

function progressBar(value, label) {
  const p = el("progress", { max: "1", "aria-label": label || "progress" });
  p.value = value || 0;
  return p;
}

function jobRow(job) {
  return el("tr", { "data-job": job.id },
    el("td", { text: fmtTime(job.created_at) }),
    el("td", { "data-field": "sample", text: job.external_sample_id || "" }),
    el("td", { class: "state state-" + job.state, "data-field": "state", text: job.state }),
    el("td", { "data-field": "stage", text: job.stage || "" }),
    el("td", {}, progressBar(job.progress, "progress of " + (job.external_sample_id || job.id))),
    el("td", { "data-field": "report", class: "report-" + (job.report_status || "none"),
               text: job.report_status || "" }),
    el("td", {}, el("a", { href: "#/jobs/" + job.id, text: "open",
                           "aria-label": "open job " + (job.external_sample_id || job.id) })));
}

async function refreshJobs() {
  watcher.stop();
  const params = filterParams();
  params.set("limit", String(PAGE_SIZE));
  const cursor = listState.cursors[listState.page];
  if (cursor) params.set("cursor", cursor);
  try {
    const page = await (await api("/v1/jobs?" + params)).json();
    const tbody = $("jobs-table").querySelector("tbody");
    tbody.replaceChildren(...page.items.map(jobRow));
    listState.next = page.next_cursor;
    if (listState.page === 0) listState.firstId = page.items.length ? page.items[0].id : null;
    $("jobs-empty").hidden = page.items.length > 0;
    $("page-prev").disabled = listState.page === 0;
    $("page-first").disabled = listState.page === 0;
    $("page-next").disabled = !page.next_cursor;
    $("page-info").textContent = "page " + (listState.page + 1) + (page.next_cursor ? "" : " (last)");
    $("new-jobs").hidden = true;
    showError($("jobs-error"), null);
    watcher.start(page.items);
  } catch (err) {
    if (!apiKey()) return;
    showError($("jobs-error"), err);
    pollTimer = setTimeout(refreshJobs, POLL_MS * 2);
  }
}

function goPage(delta) {
  if (delta === 0) { listState.page = 0; listState.cursors = [null]; }
  else if (delta > 0 && listState.next) {
    listState.cursors[listState.page + 1] = listState.next;
    listState.page += 1;
  } else if (delta < 0 && listState.page > 0) listState.page -= 1;
  refreshJobs();
}

// Live updates of the rows on screen only. A running job is long-polled (GET /v1/jobs/{id}
// ?wait=N answers when its state or stage changes) while few are on screen; beyond
// LONG_POLLS, and for succeeded jobs (whose report status a sign-off changes), rows are
// re-checked with If-None-Match (a 304 costs no body). Failed and canceled jobs never change.
const watcher = {
  jobs: new Map(),   // id -> {job, etag, visible, inFlight, due}
  observer: null,
  timer: null,
  newTimer: null,
  generation: 0,

  start(items) {
    this.stop();
    this.abort = new AbortController();
    const gen = this.generation;
    for (const job of items) this.jobs.set(job.id, { job, etag: null, visible: false, inFlight: false, due: 0 });
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const w = this.jobs.get(e.target.dataset.job);
        if (w) w.visible = e.isIntersecting;
      }
    });
    for (const tr of document.querySelectorAll("#jobs-table tbody tr")) this.observer.observe(tr);
    this.timer = setInterval(() => { if (gen === this.generation) this.tick(); }, 500);
    this.newTimer = setInterval(() => { if (gen === this.generation) this.checkNew(); }, NEW_JOBS_MS);
  },

  stop() {
    this.generation += 1;
    // a long poll holds one of the browser's few connections to the host: let it go now
    if (this.abort) { this.abort.abort(); this.abort = null; }
    if (this.observer) this.observer.disconnect();
    clearInterval(this.timer);
    clearInterval(this.newTimer);
    this.jobs = new Map();
    this.observer = null;
  },

  tick() {
    const now = Date.now();
    let longPolls = [...this.jobs.values()].filter((w) => w.inFlight === "long").length;
    for (const [id, w] of this.jobs) {
      if (!w.visible || w.inFlight || now < w.due) continue;
      const state = w.job.state;
      if (state === "failed" || state === "canceled") continue;
      if (state === "succeeded") { this.fetch(id, w, 0, IDLE_RECHECK_MS); continue; }
      if (longPolls < LONG_POLLS) { longPolls += 1; this.fetch(id, w, LONG_POLL_S, 0); continue; }
      this.fetch(id, w, 0, POLL_MS);  // more running jobs on screen than long-poll slots
    }
  },

  async fetch(id, w, wait, every) {
    const gen = this.generation;
    w.inFlight = wait ? "long" : "short";
    try {
      const headers = w.etag ? { "If-None-Match": w.etag } : {};
      const resp = await api("/v1/jobs/" + id + (wait ? "?wait=" + wait : ""),
                             { headers, signal: this.abort && this.abort.signal });
      if (gen !== this.generation) return;
      w.etag = resp.headers.get("ETag") || w.etag;
      if (resp.status === 200) {
        const job = await resp.json();
        w.job = job;
        const old = document.querySelector("#jobs-table tr[data-job='" + id + "']");
        if (old) {
          const row = jobRow(job);
          old.replaceWith(row);
          this.observer.observe(row);
        }
      }
      w.due = Date.now() + every;
    } catch (err) {
      w.due = Date.now() + POLL_MS * 5;
    } finally {
      w.inFlight = false;
    }
  },

  async checkNew() {
    // one job, not the page: has anything newer arrived than the top row?
    if (listState.page !== 0 || $("f-sort").value !== "-created_at") return;
    const params = filterParams();
    params.set("limit", "1");
    try {
      const page = await (await api("/v1/jobs?" + params)).json();
      const top = page.items.length ? page.items[0].id : null;
      if (top && top !== listState.firstId) $("new-jobs").hidden = false;
    } catch (err) { /* the next check will tell */ }
  },
};

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

let jobEtag = null;
let shownReviewFor = null;
let jobAbort = null;  // the job view's long poll, cancelled when the view changes
let lastJobState = null;

async function openJob(id) {
  $("job-id").textContent = id;
  $("review").hidden = true;
  $("report").hidden = true;
  $("artifacts").hidden = true;
  $("report-status-badge").hidden = true;
  jobEtag = null;
  lastJobState = null;
  shownReviewFor = null;
  showError($("job-error"), null);
  $("cancel-job").onclick = async () => {
    try { await api("/v1/jobs/" + id + "/cancel", { method: "POST" }); } catch (err) { showError($("job-error"), err); }
    pollJob(id, 0);
  };
  pollJob(id, 0);
}

async function pollJob(id, wait) {
  stopPolling();
  let resp;
  try {
    const headers = jobEtag ? { "If-None-Match": jobEtag } : {};
    jobAbort = new AbortController();
    resp = await api("/v1/jobs/" + id + (wait ? "?wait=" + wait : ""), { headers, signal: jobAbort.signal });
  } catch (err) {
    if (!apiKey() || err.name === "AbortError") return;
    showError($("job-error"), err);
    if (err.status !== 404) pollTimer = setTimeout(() => pollJob(id, 0), POLL_MS * 2);
    return;
  }
  if (location.hash !== "#/jobs/" + id) return;  // navigated away meanwhile
  jobEtag = resp.headers.get("ETag") || jobEtag;
  if (resp.status === 304) {
    // unchanged: a running job is long-polled again at once; a finished one (which the server
    // answers without waiting) is asked again later
    if (TERMINAL.has(lastJobState)) pollTimer = setTimeout(() => pollJob(id, 0), IDLE_RECHECK_MS);
    else pollTimer = setTimeout(() => pollJob(id, LONG_POLL_S), 0);
    return;
  }
  const job = await resp.json();
  lastJobState = job.state;
  $("job-summary").replaceChildren(...summaryRows(job));
  $("job-summary").dataset.state = job.state;
  $("job-progress").value = job.progress || 0;
  $("cancel-job").hidden = TERMINAL.has(job.state);
  setBadge(job.report_status);
  if (job.error) showError($("job-error"), Object.assign(new Error(job.error.detail), { code: job.error.code }));
  if (!TERMINAL.has(job.state)) { pollTimer = setTimeout(() => pollJob(id, LONG_POLL_S), 0); return; }
  if (job.state === "succeeded" && shownReviewFor !== id) {
    shownReviewFor = id;
    try { await showReview(id); } catch (err) { showError($("job-error"), err); }
  } else if (job.state === "succeeded") {
    // the job changed (its ETag did): a sign-off, here or by a colleague
    try { await loadHistory(id); } catch (err) { /* the next check will tell */ }
  }
  // a succeeded job can still be signed (here or by a colleague): a 304 most of the time
  if (job.state === "succeeded" && location.hash === "#/jobs/" + id) {
    pollTimer = setTimeout(() => pollJob(id, 0), IDLE_RECHECK_MS);
  }
}

function setBadge(status) {
  const b = $("report-status-badge");
  b.hidden = !status;
  b.textContent = status ? "report " + status : "";
  b.className = "badge badge-" + (status || "none");
}

// ------------------------------------------------------------------ sign-off and exports
const EXPORTS = [["pdf", "PDF", "pdf"], ["fhir", "FHIR DiagnosticReport", "fhir.json"],
                 ["hl7", "HL7 v2 ORU^R01", "hl7"], ["html", "HTML", "html"],
                 ["markdown", "Markdown", "md"], ["json", "JSON", "json"]];

async function loadHistory(id) {
  const h = await (await api("/v1/jobs/" + id + "/report/history")).json();
  $("signoff-status").textContent = h.report_status;
  $("signoff").dataset.status = h.report_status;
  setBadge(h.report_status);
  $("signoff-history").replaceChildren(...h.signoffs.map((s) => el("li", { "data-status": s.status },
    el("strong", { text: s.status }), " by ", el("span", { class: "reviewer", text: s.reviewer }),
    ", " + fmtTime(s.signed_at),
    s.comment ? el("blockquote", { text: s.comment }) : null,
    el("span", { class: "hint", text: " report.json sha256 " + s.content_sha256.slice(0, 12) + "…" }))));
  if (!h.signoffs.length) $("signoff-history").append(el("li", { class: "hint", text: "Not signed yet: the report is preliminary." }));
  const reviewer = me && me.role === "reviewer";
  $("sign-form").hidden = !reviewer;
  $("sign-not-allowed").hidden = reviewer;
  const st = $("sign-status");
  st.value = h.report_status === "preliminary" ? "final" : "amended";
  for (const o of st.options) o.disabled = o.value !== st.value;
  $("sign-comment").required = st.value === "amended";
  $("sign-comment").setAttribute("aria-required", String(st.value === "amended"));
  $("sign-comment-need").textContent = st.value === "amended" ? "(required: the addendum)" : "(optional)";
  $("sign-button").textContent = st.value === "final" ? "Sign report final" : "Sign amendment";
  return h;
}

function setupSignForm(id) {
  $("sign-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showError($("sign-error"), null);
    const body = { reviewer: $("sign-reviewer").value.trim(), status: $("sign-status").value,
                   comment: $("sign-comment").value.trim() || null };
    if (!body.reviewer) { showError($("sign-error"), new Error(PLAIN.reviewer_missing)); $("sign-reviewer").focus(); return; }
    if (body.status === "amended" && !body.comment) {
      showError($("sign-error"), new Error(PLAIN.amendment_needs_comment)); $("sign-comment").focus(); return;
    }
    $("sign-button").disabled = true;
    try {
      await api("/v1/jobs/" + id + "/report/sign", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      $("sign-comment").value = "";
      await loadHistory(id);
    } catch (err) {
      showError($("sign-error"), err);
    } finally {
      $("sign-button").disabled = false;
    }
  };
  $("exports").replaceChildren(...EXPORTS.map(([fmt, label, ext]) => el("button", {
    type: "button", class: "secondary", "data-format": fmt, text: label,
    onclick: () => downloadReport(id, fmt, ext) })));
}

async function downloadReport(id, fmt, ext) {
  try {
    const resp = await api("/v1/jobs/" + id + "/report?format=" + fmt);
    saveBlob(await resp.blob(), "report-" + id + "." + ext);
  } catch (err) { showError($("sign-error"), err); }
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  blobUrls.push(url);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}

// ------------------------------------------------------------------ the tissue viewer
// OpenSeadragon (vendored under /console/vendor, no CDN) shows the job's H&E; each layer is
// drawn once into a canvas the size of the image and added as a second image over it, so
// zoom, pan and opacity are the viewer's own.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"];
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const LAYERS = [["domain", "Domains"], ["cell_type", "Cell types"], ["lineage", "Lineages"], ["qc", "QC"]];
const QC_METRICS = ["total_counts", "n_genes", "pct_mito", "confidence"];

let viewer = null;
let ov = null;  // {doc, w, h, items: {layer: TiledImage}, base, selection, report}

function destroyViewer() {
  if (viewer) { viewer.destroy(); viewer = null; }
  ov = null;
  $("viewer").replaceChildren();
}

function ramp(t) {
  t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(t), VIRIDIS.length - 2);
  const f = t - i;
  const c = VIRIDIS[i].map((a, j) => Math.round(a + f * (VIRIDIS[i + 1][j] - a)));
  return "rgb(" + c.join(",") + ")";
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the image could not be read"));
    img.src = url;
  });
}

function canvasUrl(canvas) {
  return new Promise((resolve) => canvas.toBlob((b) => {
    const url = URL.createObjectURL(b);
    blobUrls.push(url);
    resolve(url);
  }, "image/png"));
}

function spotRadius(doc) {
  if (doc.spot_radius) return doc.spot_radius;
  // no spot size known (cells, bins): half the mean spacing
  const n = Math.max(doc.n_spots, 1);
  const w = Math.max(...doc.x) - Math.min(...doc.x), h = Math.max(...doc.y) - Math.min(...doc.y);
  return Math.max(0.5, 0.5 * Math.sqrt((w * h) / n));
}

function layerColours(name) {
  // [colour per spot, legend entries]
  const doc = ov.doc;
  if (name === "qc") {
    const metric = $("qc-metric") ? $("qc-metric").value : "total_counts";
    const L = doc.layers[metric];
    if (!L) return null;
    const log = metric === "total_counts" || metric === "n_genes";
    const f = (v) => (log ? Math.log10(1 + v) : v);
    const lo = f(L.min || 0), hi = f(L.max || 1);
    const colours = L.values.map((v) => (v === null ? "rgba(0,0,0,0)" : ramp((f(v) - lo) / (hi - lo || 1))));
    return { colours, legend: { kind: "continuous", title: L.title + (log ? " (log scale)" : ""), min: L.min, max: L.max } };
  }
  const L = doc.layers[name];
  if (!L) return null;
  const colours = L.codes.map((c) => PALETTE[c % PALETTE.length]);
  const counts = new Array(L.categories.length).fill(0);
  for (const c of L.codes) counts[c] += 1;
  return { colours, legend: { kind: "categorical", title: L.title, layer: name,
    entries: L.categories.map((cat, i) => ({ name: cat || "(none)", colour: PALETTE[i % PALETTE.length], n: counts[i] })) } };
}

function drawSpots(colours, only) {
  const doc = ov.doc;
  const k = Math.min(4096, Math.max(2048, Math.max(ov.w, ov.h))) / Math.max(ov.w, ov.h);
  const canvas = el("canvas");
  canvas.width = Math.round(ov.w * k);
  canvas.height = Math.round(ov.h * k);
  const ctx = canvas.getContext("2d");
  const r = Math.max(0.8, ov.radius * k);
  for (let i = 0; i < doc.n_spots; i++) {
    if (only && !only(i)) continue;
    ctx.fillStyle = colours[i];
    ctx.beginPath();
    ctx.arc(doc.x[i] * k, doc.y[i] * k, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  return canvas;
}

function addImage(url, opacity) {
  return new Promise((resolve) => viewer.addTiledImage({
    tileSource: { type: "image", url, buildPyramid: false }, x: 0, y: 0, width: 1, opacity,
    success: (e) => resolve(e.item), error: () => resolve(null) }));
}

function opacity() { return Number($("overlay-opacity").value) / 100; }

async function setLayer(name, on) {
  if (!ov) return;
  const box = $("layer-" + name);
  if (box) box.checked = on;
  if (ov.items[name]) { viewer.world.removeItem(ov.items[name]); delete ov.items[name]; }
  if (on) {
    const lc = layerColours(name);
    if (!lc) return;
    ov.legends[name] = lc.legend;
    const url = await canvasUrl(drawSpots(lc.colours));
    ov.items[name] = await addImage(url, opacity());
    if (ov.selection) viewer.world.setItemIndex(ov.selection, viewer.world.getItemCount() - 1);
  } else delete ov.legends[name];
  $("tissue").dataset.layers = Object.keys(ov.items).join(" ");
  renderLegend();
}

function renderLegend() {
  const box = $("legend");
  box.replaceChildren();
  for (const [name] of LAYERS) {
    const lg = ov && ov.legends[name];
    if (!lg) continue;
    if (lg.kind === "continuous") {
      box.append(el("div", { class: "legend-block" }, el("h3", { text: lg.title }),
        el("div", { class: "ramp", "aria-hidden": "true" }),
        el("p", { class: "hint", text: "low " + lg.min + " · high " + lg.max })));
      continue;
    }
    const items = lg.entries.map((e) => {
      const sw = el("span", { class: "swatch", "aria-hidden": "true" });
      sw.style.background = e.colour;
      if (lg.layer === "domain") {
        return el("li", {}, el("button", { type: "button", class: "linkish domain-button", "data-domain": e.name,
          onclick: () => selectDomain(e.name) }, sw, e.name + " (" + e.n + ")"));
      }
      return el("li", {}, sw, e.name + " (" + e.n + ")");
    });
    const held = ov.doc.layers[lg.layer] && ov.doc.layers[lg.layer].withheld;
    box.append(el("div", { class: "legend-block", "data-legend": lg.layer },
      el("h3", { text: lg.title }),
      held ? el("p", { class: "withheld", text: "Withheld by the analysis, shown on request: " + held }) : null,
      el("ul", { class: "legend" }, ...items)));
  }
}

async function buildViewer(id, doc, artifacts) {
  destroyViewer();
  if (typeof OpenSeadragon === "undefined") throw new Error("the image viewer did not load");
  ov = { doc, items: {}, legends: {}, selection: null, selected: null };
  let baseUrl;
  const hasImage = doc.image.artifact && artifacts.some((a) => a.name === doc.image.artifact);
  if (hasImage) {
    baseUrl = await fetchBlobUrl(id, doc.image.artifact);
    const img = await loadImage(baseUrl);
    ov.w = img.naturalWidth; ov.h = img.naturalHeight;
    $("viewer-note").textContent = "H&E of the sample (" + ov.w + " × " + ov.h + " px), " + doc.n_spots + " spots.";
  } else {
    ov.w = Math.ceil(Math.max(...doc.x, 1) * 1.02); ov.h = Math.ceil(Math.max(...doc.y, 1) * 1.02);
    const c = el("canvas"); c.width = Math.min(ov.w, 4096); c.height = Math.min(ov.h, 4096);
    const ctx = c.getContext("2d"); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
    baseUrl = await canvasUrl(c);
    $("viewer-note").textContent = "This sample has no H&E image: the layers are drawn on a blank page.";
  }
  ov.radius = spotRadius(doc);
  viewer = OpenSeadragon({
    element: $("viewer"), tileSources: { type: "image", url: baseUrl, buildPyramid: false },
    showNavigationControl: false, drawer: "canvas", crossOriginPolicy: false,
    gestureSettingsMouse: { clickToZoom: false }, visibilityRatio: 0.5, maxZoomPixelRatio: 8,
  });
  await new Promise((resolve) => viewer.addOnceHandler("open", resolve));
  ov.base = viewer.world.getItemAt(0);
  // a click picks a spot, a drag pans: told apart by distance (not by time, which a busy
  // machine stretches)
  let pressedAt = null;
  viewer.addHandler("canvas-press", (e) => { pressedAt = e.position; });
  viewer.addHandler("canvas-click", (e) => {
    if (pressedAt && pressedAt.distanceTo(e.position) > 6) return;
    const p = ov.base.viewerElementToImageCoordinates(e.position);
    const i = nearestSpot(p.x, p.y);
    if (i >= 0 && doc.layers.domain) selectDomain(doc.layers.domain.categories[doc.layers.domain.codes[i]]);
  });
  // layer switches: checkboxes, one per layer the overlay has
  const fs = $("layers");
  fs.replaceChildren(el("legend", { text: "Layers over the H&E" }));
  for (const [name, label] of LAYERS) {
    const has = name === "qc" ? QC_METRICS.some((m) => doc.layers[m]) : !!doc.layers[name];
    if (!has) continue;
    const held = name !== "qc" && doc.layers[name].withheld;
    const box = el("input", { type: "checkbox", id: "layer-" + name, "data-layer": name,
                              "data-withheld": held ? "true" : null,
                              onchange: (e) => setLayer(name, e.target.checked) });
    fs.append(el("span", { class: "layer" }, box, el("label", { for: "layer-" + name,
      text: label + (held ? " (withheld)" : ""), title: held || null })));
  }
  if (QC_METRICS.some((m) => doc.layers[m])) {
    fs.append(el("span", { class: "layer" }, el("label", { for: "qc-metric", text: "QC metric" }),
      el("select", { id: "qc-metric", onchange: () => { if (ov.items.qc) setLayer("qc", true); } },
        ...QC_METRICS.filter((m) => doc.layers[m]).map((m) => el("option", { value: m, text: doc.layers[m].title })))));
  }
  // the first layer the analysis stands behind is on; a withheld one only on request
  const first = ["domain", "lineage", "cell_type"].find((n) => doc.layers[n] && !doc.layers[n].withheld);
  if (first) await setLayer(first, true);
  if (!first) {
    $("legend").replaceChildren(el("p", { class: "hint",
      text: "The analysis withheld domains and cell types for this sample (reasons beside each layer); turn a layer on to see it anyway, or use QC." }));
  }
  $("tissue").dataset.ready = "true";
}

function nearestSpot(x, y) {
  const d = ov.doc;
  let best = -1, bestD = Infinity;
  for (let i = 0; i < d.n_spots; i++) {
    const dx = d.x[i] - x, dy = d.y[i] - y, dd = dx * dx + dy * dy;
    if (dd < bestD) { bestD = dd; best = i; }
  }
  return bestD <= (3 * ov.radius) ** 2 ? best : -1;
}

async function selectDomain(domainId) {
  if (!ov) return;
  const doc = ov.doc;
  const L = doc.layers.domain;
  const code = L.categories.indexOf(domainId);
  ov.selected = domainId;
  if (ov.selection) { viewer.world.removeItem(ov.selection); ov.selection = null; }
  const ring = new Array(doc.n_spots).fill("rgba(255,255,255,0.9)");
  const url = await canvasUrl(drawSpots(ring, (i) => L.codes[i] === code));
  ov.selection = await addImage(url, 0.6);
  for (const b of document.querySelectorAll(".domain-button")) b.setAttribute("aria-pressed", String(b.dataset.domain === domainId));
  const d = doc.domains.find((x) => x.id === domainId) || { id: domainId };
  const pct = (v) => (Math.round(v * 1000) / 10) + " %";
  const sorted = (o) => Object.entries(o || {}).sort((a, b) => b[1] - a[1]);
  const body = $("domain-body");
  body.replaceChildren();
  body.append(...[
    el("p", {}, el("strong", { text: domainId }),
      d.n !== undefined ? ", " + d.n + " spots" : "",
      d.fraction_of_units !== undefined ? " (" + pct(d.fraction_of_units) + " of the section)" : "",
      d.dominant_lineage ? "; dominant lineage " + d.dominant_lineage : "",
      d.mean_confidence !== undefined ? "; mean annotation confidence " + d.mean_confidence : ""),
    L.withheld ? el("p", { class: "withheld", text: "The analysis withheld its domains for this sample: " + L.withheld }) : null,
    el("h3", { text: "Composition" }),
    el("div", { class: "composition" },
      compositionTable("cell type", sorted(d.cell_types), pct),
      compositionTable("lineage", sorted(d.lineage_composition), pct)),
    d.markers && d.markers.length ? el("p", {}, "Top marker genes: ", el("span", { text: d.markers.slice(0, 12)
      .map((m) => (m && typeof m === "object" ? m.gene || m.name || JSON.stringify(m) : String(m))).join(", ") })) : null,
    d.adjacent_domains && d.adjacent_domains.length ? el("p", { text: "Borders: " + d.adjacent_domains.join(", ") }) : null,
    el("h3", { text: "In the report" }),
    domainFindings(domainId)].filter((n) => n !== null && n !== undefined));
  $("domain-title").textContent = "Domain " + domainId;
  $("domain-detail").hidden = false;
  $("domain-detail").dataset.domain = domainId;
}

function compositionTable(what, rows, pct) {
  if (!rows.length) return el("p", { class: "hint", text: "no " + what + " composition computed" });
  return el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: what }), el("th", { scope: "col", text: "share" }))),
    el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: pct(v) })))));
}

function domainFindings(domainId) {
  // the narrative's sentences naming the domain (with their claim-check marks) and the
  // computed rows of the domain, from the report as loaded
  const report = ov.report || {};
  const re = new RegExp("\\b(?:domain\\s+)?" + domainId + "\\b");
  const out = el("div", { class: "findings" });
  const checked = checkedSentences(report);
  const sentences = [];
  for (const s of report.sections || []) {
    for (const sent of (s.narrative || "").split(/(?<=[.!?])\s+|\n+/)) {
      if (re.test(sent)) sentences.push([s.title, sent]);
    }
  }
  if (sentences.length) {
    out.append(el("ul", {}, ...sentences.map(([title, sent]) => el("li", {},
      el("span", { class: "hint", text: title + ": " }), claimSpan(sent, checked.get(sent.trim()))))));
  } else out.append(el("p", { class: "hint", text: "The narrative does not name " + domainId + "." }));
  for (const s of report.sections || []) {
    const doms = s.computed && s.computed.domains;
    const row = Array.isArray(doms) && doms.find((x) => x && x.id === domainId);
    if (row) out.append(el("div", { class: "computed" }, el("h3", { text: s.title + " (computed)" }), computedNode(row)));
  }
  return out;
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


// ------------------------------------------------------------------ claim-check marks
const VERDICT_MARK = { supported: "✓", contradicted: "✗", unverifiable: "?" };

function checkedSentences(report) {
  const m = new Map();
  for (const s of ((report.claim_check || {}).sentences || [])) {
    if (s && s.sentence) m.set(String(s.sentence).trim(), s);
  }
  return m;
}

function claimSpan(text, checked, unverified) {
  if (!checked) return markedNarrative(text, unverified);
  const reasons = (checked.claims || []).map((c) => c.kind + " " + c.text + ": " + c.verdict
    + (c.reason ? " (" + c.reason + ")" : "")).join("; ");
  return el("span", { class: "claim claim-" + checked.verdict, "data-verdict": checked.verdict, title: reasons },
    markedNarrative(text, unverified),
    el("span", { class: "claim-tag", "aria-hidden": "true", text: VERDICT_MARK[checked.verdict] || "" }),
    el("span", { class: "visually-hidden", text: " (claim check: " + checked.verdict + (reasons ? "; " + reasons : "") + ")" }));
}

function narrativeWithClaims(text, unverified, checked) {
  // the narrative with each checked sentence wrapped in its verdict; the rest as it is
  const frag = document.createDocumentFragment();
  const found = [];
  for (const [sentence, c] of checked) {
    const at = text.indexOf(sentence);
    if (at >= 0 && sentence.length > 3) found.push([at, at + sentence.length, c]);
  }
  found.sort((a, b) => a[0] - b[0]);
  let pos = 0;
  for (const [a, b, c] of found) {
    if (a < pos) continue;  // overlapping match: keep the first
    frag.append(markedNarrative(text.slice(pos, a), unverified));
    frag.append(claimSpan(text.slice(a, b), c, unverified));
    pos = b;
  }
  frag.append(markedNarrative(text.slice(pos), unverified));
  return frag;
}

// ------------------------------------------------------------------ review view
async function fetchBlobUrl(id, name) {
  const resp = await api("/v1/jobs/" + id + "/artifacts/" + name.split("/").map(encodeURIComponent).join("/"));
  const url = URL.createObjectURL(await resp.blob());
  blobUrls.push(url);
  return url;
}

async function showReview(id) {
  const [report, artifacts] = await Promise.all([
    api("/v1/jobs/" + id + "/report").then((r) => r.json()),
    api("/v1/jobs/" + id + "/artifacts").then((r) => r.json()),
  ]);
  $("review").hidden = false;
  setupSignForm(id);
  await loadHistory(id);
  renderReport(id, report, artifacts);
  try {
    const doc = await (await api("/v1/jobs/" + id + "/overlay")).json();
    await buildViewer(id, doc, artifacts.items);
    ov.report = report;
  } catch (err) {
    $("viewer-note").textContent = "No overlay: " + err.message;
    $("tissue").dataset.ready = "false";
  }
  await showFigures(id, report, artifacts);
}

function renderReport(id, report, artifacts) {
  const root = $("report");
  const src = report.narrative_source || {};
  const nUnverified = (report.provenance || {}).unverified_numbers;
  const checked = checkedSentences(report);
  const counts = (report.claim_check || {}).counts;
  fill(root,
    el("h2", { text: "Report" }),
    el("p", { class: "disclaimer", text: report.disclaimer || "Research output, not a diagnosis." }),
    el("p", {},
      "Narrative ", el("strong", { text: src.label || "" }),
      " (backend ", el("code", { text: String(src.backend) }),
      src.model ? el("span", {}, ", model ", el("code", { text: String(src.model) })) : null,
      "). Computed tables come from the analysis; the narrative is shown apart from them. ",
      el("mark", { class: "unverified", text: "Highlighted" }),
      " numbers in the narrative match no computed value (unverified" +
        (nUnverified !== undefined ? ": " + nUnverified + " in this report" : "") + ")."),
    counts ? el("p", { class: "claim-key", id: "claim-summary" },
      "Claim check: ", el("span", { class: "claim claim-supported", text: (counts.supported || 0) + " supported ✓" }), " · ",
      el("span", { class: "claim claim-unverifiable", text: (counts.unverifiable || 0) + " unverifiable ?" }), " · ",
      el("span", { class: "claim claim-contradicted", text: (counts.contradicted || 0) + " contradicted ✗" }),
      " (" + (counts.sentences_removed || 0) + " sentence(s) struck). Point at a marked sentence for its reasons.") : null);
  for (const s of report.sections || []) {
    const narrative = s.narrative
      ? el("div", { class: "narrative" }, narrativeWithClaims(s.narrative, s.unverified_numbers, checked))
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
      el("div", { class: "narrative" }, narrativeWithClaims(un.text, un.unverified_numbers, checked))));
  }
  const struck = [...checked.values()].filter((c) => c.verdict === "contradicted");
  if (struck.length) {
    root.append(el("div", { class: "report-section", "data-section": "struck" },
      el("h2", { text: "Struck by the claim check" }),
      el("ul", {}, ...struck.map((c) => el("li", {}, claimSpan(c.sentence, c))))));
  }
  root.append(el("h2", { text: "Figures" }), el("div", { id: "figures" }));
  root.append(el("details", {}, el("summary", { text: "Provenance" }),
    el("pre", { text: JSON.stringify(report.provenance, null, 2) })));
  root.hidden = false;

  const list = $("artifact-list");
  list.replaceChildren(...artifacts.items.map((a) => el("li", {},
    el("button", { type: "button", class: "linkish", "data-artifact": a.name, text: a.name,
                   onclick: () => download(id, a.name) }),
    " ", el("span", { class: "hint", text: fmtBytes(a.size) }))));
  $("artifacts").hidden = false;
}

async function showFigures(id, report, artifacts) {
  // figures are fetched with the Bearer header and shown through blob: URLs; first the
  // H&E as the model saw it, when the report stage stored it
  const figures = $("figures");
  const shown = (report.figures || []).slice();
  if (artifacts.items.some((a) => a.name === "he_model_input.png")) shown.unshift("he_model_input.png");
  for (const name of shown) {
    const caption = name === "he_model_input.png" ? "H&E as sent to the model" : name.replace(/^figures\//, "");
    const img = el("img", { alt: caption });
    figures.append(el("figure", {}, img, el("figcaption", { text: caption })));
    try { img.src = await fetchBlobUrl(id, name); } catch (err) { img.alt = name + " (" + err.message + ")"; }
  }
  figures.dataset.loaded = String(shown.length);
}

async function download(id, name) {
  try {
    const resp = await api("/v1/jobs/" + id + "/artifacts/" + name.split("/").map(encodeURIComponent).join("/"));
    saveBlob(await resp.blob(), name.split("/").pop());
  } catch (err) {
    showError($("job-error"), err);
  }
}

// ------------------------------------------------------------------ start
document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(null));
  $("upload-form").addEventListener("submit", submitSample);
  $("upload-abort").addEventListener("click", () => { stopRequested = true; if (currentUpload) currentUpload.abort(); });
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); goPage(0); });
  $("clear-filters").addEventListener("click", () => { $("filters").reset(); goPage(0); });
  $("page-next").addEventListener("click", () => goPage(1));
  $("page-prev").addEventListener("click", () => goPage(-1));
  $("page-first").addEventListener("click", () => goPage(0));
  $("show-new-jobs").addEventListener("click", () => goPage(0));
  $("zoom-in").addEventListener("click", () => { if (viewer) viewer.viewport.zoomBy(1.5); });
  $("zoom-out").addEventListener("click", () => { if (viewer) viewer.viewport.zoomBy(1 / 1.5); });
  $("zoom-home").addEventListener("click", () => { if (viewer) viewer.viewport.goHome(); });
  $("overlay-opacity").addEventListener("input", () => {
    $("overlay-opacity-value").textContent = $("overlay-opacity").value + " %";
    if (ov) for (const item of Object.values(ov.items)) if (item) item.setOpacity(opacity());
  });
  window.addEventListener("hashchange", route);
  route();
});
