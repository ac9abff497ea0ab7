// The executor console: plain fetch against the JSON API, no framework, no build step.
// Auth is the session cookie (HttpOnly, SameSite=Strict) set by POST /api/session; every
// state-changing call sends the session's CSRF token in X-CSRF-Token. The operator key is
// only ever in the sign-in form's field and the body of that one POST: never in a URL, never
// in localStorage or sessionStorage. Data reaches the page through textContent only.

const ROOT = document.body.dataset.root || "";
const REFRESH_MS = 2000; // the live view's interval while a campaign is RUNNING
const LIST_PAGE = 20;
const FAILED_PAGE = 50;
const CAMPAIGN_ID = /^cmp_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

// The transitions the state machine accepts from each status (the buttons enabled).
const ACTIONS = {
  DRAFT: ["start", "cancel"],
  RUNNING: ["pause", "cancel"],
  PAUSED: ["resume", "cancel"],
  COMPLETED: [],
  CANCELLED: [],
};
const UPLOAD_STATUSES = ["DRAFT", "PAUSED"];
const STATUS_WORDS = {
  DRAFT: "Draft",
  RUNNING: "Running",
  PAUSED: "Paused",
  COMPLETED: "Completed",
  CANCELLED: "Cancelled",
};
// What an operator can do about each kind of pause (the engine's pause texts).
const PAUSE_ADVICE = [
  ["Paused by operator", "Resume when you are ready."],
  ["Daily limit reached", "The daily messaging limit is used up; resume once it resets."],
  ["Authentication or permission failure", "Check the access token and its permissions."],
  ["Account restricted or locked", "The WhatsApp Business account is restricted by Meta."],
  ["Spam or quality enforcement", "Meta limited sending for quality; review the template."],
  ["Template missing, paused or disabled", "Check the template's status in WhatsApp Manager."],
];

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let csrfToken = null;

function toSignIn() {
  window.location.replace(`${ROOT}/signin`);
}

async function api(method, path, { json, form, anonymous = false } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets multipart/form-data with its boundary
  }
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(ROOT + path, {
      method,
      headers,
      body,
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "The console cannot reach the server. Check your connection.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401 && !anonymous) {
    toSignIn();
    throw new ApiError(401, "Your session has ended: sign in again.");
  }
  if (!response.ok || !data || data.success === false) {
    const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

function $(id) {
  return document.getElementById(id);
}

// Writes only a change: the live regions announce news, not every 2-second refresh.
function setText(id, value) {
  const node = $(id);
  const text = String(value ?? "");
  if (node.textContent !== text) node.textContent = text;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// A timestamp as the API gives it (ISO-8601, or epoch seconds), in the reader's locale.
function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const epoch = typeof value === "number" || /^\d+(\.\d+)?$/.test(value);
  const date = epoch ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// -- the sign-in page ------------------------------------------------------------------------

async function signInPage() {
  const form = $("signin-form");
  const field = $("operator-key");
  const error = $("signin-error");
  try {
    await api("GET", "/api/session", { anonymous: true });
    window.location.replace(`${ROOT}/`); // already signed in
    return;
  } catch {
    // not signed in: stay here
  }
  field.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const key = field.value.trim();
    if (!key) {
      error.textContent = "Enter your operator key.";
      field.focus();
      return;
    }
    $("signin-submit").disabled = true;
    try {
      await api("POST", "/api/session", { json: { key }, anonymous: true });
      field.value = "";
      window.location.replace(`${ROOT}/`);
    } catch (problem) {
      error.textContent =
        problem.status === 401 ? "That operator key is not valid." : problem.message;
      field.select();
    } finally {
      $("signin-submit").disabled = false;
    }
  });
  document.body.dataset.ready = "true";
}

// -- the console -----------------------------------------------------------------------------

const state = {
  campaignId: null,
  campaign: null,
  generation: 0, // bumped on every load: answers for an older campaign are dropped
  timer: null,
  busy: false,
  listCursor: null,
  failedCursor: null,
  failedCountShown: -1,
};

function notify(message) {
  $("problem").textContent = "";
  $("notice").textContent = message;
}

function complain(problem) {
  if (problem instanceof ApiError && problem.status === 401) return; // on its way to sign-in
  $("notice").textContent = "";
  $("problem").textContent = problem instanceof Error ? problem.message : String(problem);
}

function clearMessages() {
  $("notice").textContent = "";
  $("problem").textContent = "";
}

// The campaign list, newest first.

function fillListButton(button, campaign) {
  const status = element("span", STATUS_WORDS[campaign.status] || campaign.status, "badge");
  status.dataset.status = campaign.status;
  const percent = Math.round(campaign.progressPercent ?? 0);
  button.replaceChildren(
    element("span", campaign.name, "name"),
    status,
    element("span", `${percent}% · ${when(campaign.createdAt)}`, "meta"),
  );
}

function listItem(campaign) {
  const item = element("li");
  const button = element("button", null, "pick");
  button.type = "button";
  button.dataset.campaignId = campaign.campaignId;
  fillListButton(button, campaign);
  if (campaign.campaignId === state.campaignId) button.setAttribute("aria-current", "true");
  button.addEventListener("click", () => loadCampaign(campaign.campaignId));
  item.append(button);
  return item;
}

// The list's entry for the campaign on view follows its live status.
function updateListItem(campaign) {
  for (const button of $("campaign-list").querySelectorAll("button.pick")) {
    if (button.dataset.campaignId === campaign.campaignId) fillListButton(button, campaign);
  }
}

async function loadList(more = false) {
  const params = new URLSearchParams({ limit: String(LIST_PAGE) });
  const status = $("list-status").value;
  if (status) params.set("status", status);
  if (more && state.listCursor) params.set("cursor", state.listCursor);
  try {
    const data = await api("GET", `/api/campaigns?${params}`);
    const list = $("campaign-list");
    if (!more) list.replaceChildren();
    for (const campaign of data.campaigns) list.append(listItem(campaign));
    state.listCursor = data.nextCursor || null;
    $("list-more").hidden = !state.listCursor;
    $("list-empty").hidden = list.children.length > 0;
  } catch (problem) {
    complain(problem);
  }
}

function markCurrentInList() {
  for (const button of $("campaign-list").querySelectorAll("button.pick")) {
    if (button.dataset.campaignId === state.campaignId) {
      button.setAttribute("aria-current", "true");
    } else {
      button.removeAttribute("aria-current");
    }
  }
}

// One campaign: status, counters, progress, controls.

function pauseText(campaign) {
  if (campaign.status !== "PAUSED" || !campaign.pauseReason) return "";
  const reason = campaign.pauseReason;
  const advice = PAUSE_ADVICE.find(([start]) => reason.startsWith(start));
  const since = campaign.pausedAt ? ` since ${when(campaign.pausedAt)}` : "";
  return `Paused${since}: ${reason}.${advice ? ` ${advice[1]}` : ""}`;
}

function rate(value) {
  return value === null || value === undefined ? "-" : `${(100 * value).toFixed(1)}%`;
}

function costText(campaign) {
  const billable = (campaign.billable || []).reduce((sum, line) => sum + line.count, 0);
  const cost = campaign.cost;
  if (!cost) return `Billable deliveries: ${billable}. No price table (PRICES_FILE) is set.`;
  const currency = cost.currency ? ` ${cost.currency}` : "";
  const unpriced = cost.unpriced ? `, ${cost.unpriced} without a price` : "";
  return `Estimated cost: ${cost.estimated}${currency} for ${billable} billable deliveries${unpriced}.`;
}

function renderDelivery(campaign) {
  setText("count-delivered", campaign.deliveredCount ?? 0);
  setText("count-read", campaign.readCount ?? 0);
  setText("count-delivery-failed", campaign.deliveryFailedCount ?? 0);
  setText("count-held", campaign.heldCount ?? 0);
  setText("rate-delivery", rate(campaign.deliveryRate));
  setText("rate-read", rate(campaign.readRate));
  const failures = Object.entries(campaign.deliveryFailures || {});
  setText(
    "delivery-failures",
    failures.length
      ? `Delivery failures by code: ${failures.map(([code, n]) => `${code} ${n}`).join(", ")}.`
      : "No delivery failures.",
  );
  setText("delivery-cost", costText(campaign));
}

function renderTimes(campaign) {
  const times = $("campaign-times");
  times.replaceChildren();
  for (const [label, value] of [
    ["Created", campaign.createdAt],
    ["Started", campaign.startedAt],
    ["Paused", campaign.status === "PAUSED" ? campaign.pausedAt : null],
    ["Completed", campaign.completedAt],
    ["Cancelled", campaign.cancelledAt],
  ]) {
    if (!value) continue;
    const row = element("div");
    row.append(element("dt", label), element("dd", when(value)));
    times.append(row);
  }
}

function renderControls() {
  const campaign = state.campaign;
  const allowed = campaign ? ACTIONS[campaign.status] || [] : [];
  for (const button of document.querySelectorAll(".actions button[data-action]")) {
    button.disabled = state.busy || !allowed.includes(button.dataset.action);
  }
  $("execute-batch").disabled = state.busy || !campaign || campaign.status !== "RUNNING";
  const uploadable = Boolean(campaign && UPLOAD_STATUSES.includes(campaign.status));
  $("upload-form").hidden = !uploadable;
  $("upload-submit").disabled = state.busy || !uploadable;
  if (!allowed.includes("cancel")) $("cancel-confirm").hidden = true;
}

function render(campaign) {
  state.campaign = campaign;
  $("placeholder").hidden = true;
  $("campaign").hidden = false;
  setText("campaign-title", campaign.name);
  setText("campaign-id", campaign.campaignId);
  const language = campaign.templateLanguage ? ` (${campaign.templateLanguage})` : "";
  setText("campaign-template", `${campaign.templateName}${language}`);
  setText("campaign-status", STATUS_WORDS[campaign.status] || campaign.status);
  $("campaign-status").dataset.status = campaign.status;
  const percent = Number(campaign.progressPercent ?? 0);
  $("campaign-progress").value = percent;
  setText("progress-text", `${percent}%`);
  setText("count-total", campaign.totalRecipients);
  setText("count-sent", campaign.sentCount);
  setText("count-failed", campaign.failedCount);
  setText("count-unknown", campaign.unknownCount);
  setText("count-pending", campaign.pendingCount);
  renderDelivery(campaign);
  const pause = pauseText(campaign);
  setText("pause-reason", pause);
  $("pause-reason").hidden = !pause;
  $("refresh-hint").hidden = campaign.status !== "RUNNING";
  renderTimes(campaign);
  renderControls();
  updateListItem(campaign);
  document.title = `${campaign.name} · Campaign Executor`;
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = null;
  if (state.campaign && state.campaign.status === "RUNNING") {
    state.timer = setTimeout(tick, REFRESH_MS);
  }
}

async function refresh(generation) {
  const data = await api("GET", `/api/campaigns/${encodeURIComponent(state.campaignId)}`);
  if (generation !== state.generation) return;
  render(data.campaign);
  if (data.campaign.failedCount !== state.failedCountShown) {
    // The campaign's view stands even if its failures cannot be listed right now.
    await loadFailed(generation).catch(complain);
  }
}

async function tick() {
  const generation = state.generation;
  try {
    await refresh(generation);
  } catch (problem) {
    complain(problem);
  }
  if (generation === state.generation) schedule();
}

async function loadCampaign(campaignId) {
  const id = campaignId.trim();
  if (!CAMPAIGN_ID.test(id)) {
    complain(new Error(`Not a campaign ID: "${id}" (expected cmp_ followed by a UUID).`));
    return;
  }
  clearMessages();
  state.generation += 1;
  const generation = state.generation;
  clearTimeout(state.timer);
  state.campaignId = id;
  state.failedCountShown = -1;
  $("batch-result").textContent = "No batch run from this page yet.";
  $("upload-result").hidden = true;
  $("cancel-confirm").hidden = true;
  $("failed-csv").href =
    `${ROOT}/api/campaigns/${encodeURIComponent(id)}/recipients.csv?status=FAILED`;
  history.replaceState(null, "", `#${id}`);
  markCurrentInList();
  try {
    await refresh(generation);
  } catch (problem) {
    if (generation === state.generation) {
      state.campaignId = null;
      state.campaign = null;
      $("campaign").hidden = true;
      $("placeholder").hidden = false;
      history.replaceState(null, "", window.location.pathname);
    }
    complain(problem);
    return;
  }
  schedule();
}

// The failed recipients, with what their error codes mean.

function failedRow(recipient) {
  const row = element("tr");
  row.append(
    element("td", recipient.phone, "nowrap"),
    element("td", recipient.errorCode || "—", "nowrap"),
    element("td", recipient.errorMeaning || "—"),
    element("td", recipient.attempts),
    element("td", when(recipient.finishedAt) || "—"),
  );
  return row;
}

async function loadFailed(generation, more = false) {
  const id = state.campaignId;
  const params = new URLSearchParams({ status: "FAILED", limit: String(FAILED_PAGE) });
  if (more && state.failedCursor) params.set("cursor", state.failedCursor);
  const data = await api("GET", `/api/campaigns/${encodeURIComponent(id)}/recipients?${params}`);
  if (generation !== state.generation) return;
  const body = $("failed-table").tBodies[0];
  if (!more) body.replaceChildren();
  for (const recipient of data.recipients) body.append(failedRow(recipient));
  state.failedCursor = data.nextCursor || null;
  if (!more && state.campaign) state.failedCountShown = state.campaign.failedCount;
  const rows = body.rows.length;
  $("failed-table").hidden = rows === 0;
  $("failed-empty").hidden = rows > 0;
  $("failed-more").hidden = !state.failedCursor;
}

// Actions.

async function busy(work) {
  if (state.busy) return;
  state.busy = true;
  $("campaign").setAttribute("aria-busy", "true");
  renderControls();
  try {
    await work();
  } catch (problem) {
    complain(problem);
  } finally {
    state.busy = false;
    $("campaign").setAttribute("aria-busy", "false");
    renderControls();
  }
}

async function control(action) {
  const id = state.campaignId;
  const data = await api("POST", `/api/campaigns/${encodeURIComponent(id)}/control`, {
    json: { action },
  });
  const queued =
    typeof data.enqueuedRecipients === "number"
      ? ` (${plural(data.enqueuedRecipients, "recipient", "recipients")} queued)`
      : "";
  notify(`Campaign is now ${STATUS_WORDS[data.newStatus] || data.newStatus}${queued}.`);
  await refresh(state.generation);
  schedule();
  loadList();
}

function batchText(result) {
  if (result.processed === 0) {
    return result.completed
      ? "No recipients were pending: the campaign is complete."
      : "No recipients are pending right now.";
  }
  let text =
    `Processed ${result.processed}: ${result.sent} sent, ${result.failed} failed, ` +
    `${result.unknown ?? 0} unknown.`;
  if (result.paused) text += ` The campaign paused: ${result.pauseReason || "no reason given"}.`;
  if (result.completed) text += " The campaign is complete.";
  return text;
}

async function executeBatch() {
  const id = state.campaignId;
  const data = await api("POST", `/api/campaigns/${encodeURIComponent(id)}/execute-batch`);
  $("batch-result").textContent = batchText(data.result);
  await refresh(state.generation);
  schedule();
}

function renderUpload(result, fileName) {
  const parts = [
    `${fileName}: ${plural(result.inserted, "recipient", "recipients")} imported`,
    plural(result.duplicates, "duplicate", "duplicates") + " skipped",
  ];
  if (result.suppressed) parts.push(`${result.suppressed} suppressed (opted out)`);
  const invalid = result.invalid || [];
  const invalidCount = result.invalidCount ?? invalid.length;
  parts.push(plural(invalidCount, "invalid row", "invalid rows"));
  let summary = `${parts.join(", ")}.`;
  if (invalidCount > invalid.length) summary += ` The first ${invalid.length} are shown.`;
  $("upload-summary").textContent = summary;
  const body = $("invalid-table").tBodies[0];
  body.replaceChildren();
  for (const row of invalid) {
    const tr = element("tr");
    tr.append(element("td", row.line), element("td", row.value), element("td", row.reason));
    body.append(tr);
  }
  $("invalid-table").hidden = invalid.length === 0;
  $("upload-result").hidden = false;
}

async function upload(campaignId, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const result = await api("POST", `/api/campaigns/${encodeURIComponent(campaignId)}/populate`, {
    form,
  });
  if (campaignId === state.campaignId) {
    renderUpload(result, file.name);
    await refresh(state.generation);
  }
  return result;
}

async function create(form) {
  const fields = new FormData(form);
  const file = $("create-file").files[0];
  const data = await api("POST", "/api/campaigns/create", {
    json: {
      name: String(fields.get("name")).trim(),
      templateName: String(fields.get("templateName")).trim(),
      channel: "WHATSAPP",
      audienceType: "CSV",
      language: String(fields.get("language") || "en_US").trim() || "en_US",
      parameterFormat: String(fields.get("parameterFormat") || "POSITIONAL"),
    },
  });
  form.reset();
  await loadCampaign(data.campaignId);
  notify(`Created campaign ${data.campaignId}.`);
  if (file) {
    await upload(data.campaignId, file);
    notify(`Created campaign ${data.campaignId} and uploaded ${file.name}.`);
  }
  await loadList();
}

async function signOut() {
  try {
    await api("DELETE", "/api/session");
  } catch (problem) {
    if (!(problem instanceof ApiError && problem.status === 401)) {
      complain(problem);
      return;
    }
  }
  csrfToken = null;
  toSignIn();
}

function wire() {
  $("signout").addEventListener("click", signOut);
  $("list-refresh").addEventListener("click", () => loadList());
  $("list-more").addEventListener("click", () => loadList(true));
  $("list-status").addEventListener("change", () => loadList());
  $("load-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadCampaign($("load-id").value);
  });
  $("create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!form.reportValidity()) return;
    $("create-submit").disabled = true;
    busy(() => create(form)).finally(() => {
      $("create-submit").disabled = false;
    });
  });
  for (const button of document.querySelectorAll(".actions button[data-action]")) {
    const action = button.dataset.action;
    button.addEventListener("click", () => {
      if (action === "cancel") {
        $("cancel-confirm").hidden = false;
        $("cancel-no").focus();
        return;
      }
      clearMessages();
      busy(() => control(action));
    });
  }
  $("cancel-yes").addEventListener("click", () => {
    $("cancel-confirm").hidden = true;
    clearMessages();
    busy(() => control("cancel"));
  });
  $("cancel-no").addEventListener("click", () => {
    $("cancel-confirm").hidden = true;
    $("action-cancel").focus();
  });
  $("execute-batch").addEventListener("click", () => {
    clearMessages();
    busy(executeBatch);
  });
  $("campaign-refresh").addEventListener("click", () => {
    if (state.campaignId) loadCampaign(state.campaignId);
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) {
      complain(new Error("Choose a CSV file to upload."));
      return;
    }
    clearMessages();
    busy(async () => {
      await upload(state.campaignId, file);
      $("upload-form").reset();
      loadList();
    });
  });
  $("failed-more").addEventListener("click", () => {
    loadFailed(state.generation, true).catch(complain);
  });
}

async function consolePage() {
  let session;
  try {
    session = await api("GET", "/api/session", { anonymous: true });
  } catch {
    toSignIn();
    return;
  }
  csrfToken = session.csrfToken;
  $("operator-name").textContent = `Signed in as ${session.operator}`;
  wire();
  await loadList();
  const fromHash = decodeURIComponent(window.location.hash.slice(1));
  if (CAMPAIGN_ID.test(fromHash)) await loadCampaign(fromHash);
  document.body.dataset.ready = "true"; // for the browser test: handlers are wired
}

const PAGES = { signin: signInPage, console: consolePage };
const page = PAGES[document.body.dataset.page];
if (page) page();
