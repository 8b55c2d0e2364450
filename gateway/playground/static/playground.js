// The playground: every call goes to this gateway's own account API, with the token in
// `Authorization` only. The token lives in `state.token`; sessionStorage holds it only while
// "keep" is ticked.

const TOKEN_KEY = "llm-gateway-playground-token";
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = { token: "", account: "", models: new Map(), history: [], run: null };
const numbers = new Intl.NumberFormat("en");

function setToken(token) {
  state.token = token.trim();
  if ($("remember").checked && state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function accountPath(suffix) {
  return `/client/v4/accounts/${encodeURIComponent(state.account)}/${suffix}`;
}

async function callApi(path, init = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(init.headers || {}) };
  return fetch(path, { ...init, headers, cache: "no-store", referrerPolicy: "no-referrer" });
}

/** The envelope's errors as one line, with what the response says about retrying. */
async function describeFailure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && Array.isArray(body.errors) && body.errors.length) {
      message = body.errors.map((e) => `${e.code}: ${e.message}`).join("; ");
    }
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const retryAfter = response.headers.get("retry-after");
  return retryAfter ? `${message} (retry after ${retryAfter} s)` : message;
}

async function resultOf(path) {
  const response = await callApi(path);
  if (!response.ok) throw new Error(await describeFailure(response));
  return (await response.json()).result;
}

// A Cloudflare list, page by page until `result_info` says there is no more.
async function everyPage(path) {
  const items = [];
  for (let page = 1; ; page += 1) {
    const response = await callApi(`${path}?page=${page}&per_page=100`);
    if (!response.ok) throw new Error(await describeFailure(response));
    const { result, result_info: info } = await response.json();
    items.push(...result);
    if (result.length === 0 || page >= info.total_pages) return items;
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// --- connection and models -------------------------------------------------------------

async function connect() {
  setToken($("token").value);
  showError("");
  $("connection-status").textContent = "Checking the token…";
  try {
    const verification = await resultOf("/client/v4/user/tokens/verify");
    state.account = verification.account_id;
    $("account").value = state.account;
    await loadModels();
    $("connection-status").textContent = "Connected.";
    $("send").disabled = false;
    $("refresh-usage").disabled = false;
    await refreshUsage();
  } catch (error) {
    $("connection-status").textContent = "";
    $("send").disabled = true;
    showError(error.message);
  }
}

async function loadModels() {
  const models = await everyPage(accountPath("ai/models/search"));
  state.models = new Map(models.map((model) => [model.name, model]));
  const select = $("model");
  select.replaceChildren(
    ...models.map((model) => new Option(`${model.name} (${model.precision})`, model.name)),
  );
  showLimits();
}

const EMBEDDINGS = "Text Embeddings";

function embeddingModel() {
  return state.models.get($("model").value)?.task === EMBEDDINGS;
}

function showLimits() {
  const model = state.models.get($("model").value);
  if (!model) return;
  const embeddings = model.task === EMBEDDINGS;
  $("generation-fields").hidden = embeddings;
  $("embedding-fields").hidden = !embeddings;
  $("clear-chat").hidden = embeddings || !chatMode();
  if (embeddings) {
    $("model-limits").textContent =
      `Up to ${numbers.format(model.context_length)} tokens per text · ` +
      `${numbers.format(model.dimensions)} dimensions`;
    $("pooling").replaceChildren(...model.poolings.map((name) => new Option(name, name)));
    return;
  }
  $("model-limits").textContent =
    `Context ${numbers.format(model.context_length)} tokens · ` +
    `answers up to ${numbers.format(model.sequence_length)} tokens`;
  const maxTokens = $("max-tokens");
  maxTokens.max = String(model.sequence_length);
  if (Number(maxTokens.value) > model.sequence_length) {
    maxTokens.value = String(model.sequence_length);
  }
}

function chatMode() {
  return document.querySelector('input[name="mode"]:checked').value === "chat";
}

function requestBody(userText) {
  const body = {
    stream: true,
    max_tokens: Number($("max-tokens").value),
    temperature: Number($("temperature").value),
  };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  if (!chatMode()) return { prompt: userText, ...body };
  const system = $("system").value.trim();
  const messages = [
    ...(system ? [{ role: "system", content: system }] : []),
    ...state.history,
    { role: "user", content: userText },
  ];
  return { messages, ...body };
}

function renderTranscript(pendingUserText) {
  const turns = chatMode() ? [...state.history] : [];
  if (chatMode() && pendingUserText !== undefined) {
    turns.push({ role: "user", content: pendingUserText });
  }
  $("transcript").replaceChildren(
    ...turns.map((turn) => {
      const item = document.createElement("li");
      item.className = turn.role;
      item.textContent = turn.content;
      return item;
    }),
  );
  $("transcript").hidden = turns.length === 0;
}

/** Server-Sent Events out of a byte stream: yields each event's `data` and `id`. Aborting
 * the fetch errors the stream, so Stop ends this loop with an AbortError. */
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) {
      const data = [];
      let id = null;
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
      if (data.length) yield { data: data.join("\n"), id };
    }
  }
}

// --- embeddings ------------------------------------------------------------------------

/** The texts' vectors, then their cosine similarities as a table. Each vector has unit
 * length, so a dot product is the cosine. */
async function sendEmbeddings() {
  const texts = $("texts").value.split("\n").map((line) => line.trim()).filter(Boolean);
  if (!texts.length || state.run) return;
  setToken($("token").value);
  const run = { controller: new AbortController(), started: performance.now(), requestId: null };
  state.run = run;
  showError("");
  $("output").textContent = "";
  $("output").hidden = true;
  $("stats").replaceChildren();
  $("similarity").hidden = true;
  $("send").disabled = true;
  let outcome = "finished";
  let result = null;
  try {
    const response = await callApi(accountPath(`ai/run/${$("model").value}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: texts, pooling: $("pooling").value }),
      signal: run.controller.signal,
    });
    run.requestId = response.headers.get("x-request-id");
    if (!response.ok) throw new Error(await describeFailure(response));
    result = (await response.json()).result;
    drawSimilarity(texts, result.data);
  } catch (error) {
    outcome = "failed";
    showError(error.message);
  } finally {
    state.run = null;
    $("send").disabled = false;
  }
  const entries = [["Outcome", outcome, "outcome"]];
  entries.push(["Time", `${Math.round(performance.now() - run.started)} ms`, "time"]);
  if (result) entries.push(["Vectors", `${result.shape[0]} × ${result.shape[1]} (${result.pooling} pooling)`, "vectors"]);
  if (run.requestId) entries.push(["Request id", run.requestId, "request-id"]);
  showEntries(entries);
  setTimeout(refreshUsage, 1000);
}

function drawSimilarity(texts, vectors) {
  const dot = (a, b) => a.reduce((sum, value, index) => sum + value * b[index], 0);
  const header = document.createElement("tr");
  header.append(document.createElement("th"));
  texts.forEach((_, index) => {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = String(index + 1);
    header.append(cell);
  });
  const rows = vectors.map((vector, row) => {
    const line = document.createElement("tr");
    const label = document.createElement("th");
    label.scope = "row";
    label.textContent = `${row + 1}. ${texts[row]}`;
    label.title = texts[row];
    line.append(label);
    vectors.forEach((other, column) => {
      const similarity = dot(vector, other);
      const cell = document.createElement("td");
      cell.textContent = similarity.toFixed(3);
      cell.dataset.testid = "similarity-cell";
      cell.dataset.row = String(row);
      cell.dataset.column = String(column);
      cell.style.setProperty("--similarity", String(Math.max(0, similarity)));
      line.append(cell);
    });
    return line;
  });
  $("similarity").tHead.replaceChildren(header);
  $("similarity").tBodies[0].replaceChildren(...rows);
  $("similarity").hidden = false;
}

// --- a run (text generation) -----------------------------------------------------------

async function send() {
  if (embeddingModel()) return sendEmbeddings();
  $("similarity").hidden = true;
  $("output").hidden = false;
  const userText = $("prompt").value;
  if (!userText.trim() || state.run) return;
  setToken($("token").value);
  const model = $("model").value;
  const body = requestBody(userText);
  const run = {
    controller: new AbortController(),
    started: performance.now(),
    firstToken: null,
    lastToken: null,
    billed: 0,
    usage: null,
    requestId: null,
    text: "",
  };
  state.run = run;
  showError("");
  $("output").textContent = "";
  $("stats").replaceChildren();
  renderTranscript(userText);
  $("send").disabled = true;
  $("stop").disabled = false;
  let outcome = "finished";
  try {
    const response = await callApi(accountPath(`ai/run/${model}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: run.controller.signal,
    });
    run.requestId = response.headers.get("x-request-id");
    if (!response.ok) throw new Error(await describeFailure(response));
    outcome = await readAnswer(run, response.body);
  } catch (error) {
    outcome = run.controller.signal.aborted ? "stopped" : "failed";
    if (outcome === "failed") showError(error.message);
  } finally {
    state.run = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
  if (chatMode() && outcome !== "failed" && run.text) {
    state.history.push({ role: "user", content: userText }, { role: "assistant", content: run.text });
    $("prompt").value = "";
  }
  showStats(run, outcome);
  // Usage records are written in batches, about every half second.
  setTimeout(refreshUsage, 1000);
}

/** Reads the stream into the output; returns how the run ended. */
async function readAnswer(run, body) {
  for await (const event of serverSentEvents(body)) {
    if (event.data === "[DONE]") return "finished";
    const payload = JSON.parse(event.data);
    if (payload.success === false) {
      showError(payload.errors.map((e) => `${e.code}: ${e.message}`).join("; "));
      return "failed";
    }
    if (event.id !== null) run.billed = Number(event.id);
    if (payload.usage) run.usage = payload.usage;
    if (payload.response) {
      const now = performance.now();
      run.firstToken ??= now;
      run.lastToken = now;
      run.text += payload.response;
      $("output").append(payload.response);
    }
  }
  return run.controller.signal.aborted ? "stopped" : "failed";
}

function showStats(run, outcome) {
  const entries = [["Outcome", outcome, "outcome"]];
  if (run.firstToken !== null) {
    entries.push(["Time to first token", `${Math.round(run.firstToken - run.started)} ms`, "time-to-first-token"]);
  }
  const completion = run.usage ? run.usage.completion_tokens : run.billed;
  if (completion > 1 && run.lastToken > run.firstToken) {
    const rate = ((completion - 1) * 1000) / (run.lastToken - run.firstToken);
    entries.push(["Tokens per second", rate.toFixed(1), "tokens-per-second"]);
  }
  if (run.usage) {
    const { prompt_tokens: prompt, completion_tokens: done, total_tokens: total } = run.usage;
    entries.push(["Usage", `${prompt} prompt + ${done} completion = ${total} tokens`, "usage"]);
  } else if (outcome === "stopped") {
    entries.push(["Completion tokens billed", String(run.billed), "usage"]);
  }
  if (run.requestId) entries.push(["Request id", run.requestId, "request-id"]);
  showEntries(entries);
}

function showEntries(entries) {
  $("stats").replaceChildren(
    ...entries.flatMap(([label, value, key]) => {
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = value;
      detail.dataset.testid = `stat-${key}`;
      return [term, detail];
    }),
  );
}

// --- usage charts ----------------------------------------------------------------------

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function barTitle(row) {
  return (
    `${row.key}: ${numbers.format(row.total_tokens)} tokens ` +
    `(${numbers.format(row.prompt_tokens)} prompt, ${numbers.format(row.completion_tokens)} ` +
    `completion) in ${numbers.format(row.requests)} runs`
  );
}

/** One bar: prompt tokens below, completion tokens stacked on top. */
function stackedBar(row, place) {
  const group = svgElement("g", { class: "bar", "data-key": row.key, "data-tokens": row.total_tokens });
  group.append(svgElement("title", {}, barTitle(row)));
  for (const [part, tokens] of [["prompt", row.prompt_tokens], ["completion", row.completion_tokens]]) {
    group.append(svgElement("rect", { class: part, ...place(part, tokens) }));
  }
  return group;
}

function daysOfThisMonth() {
  const now = new Date();
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const count = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Array.from({ length: count }, (_, index) =>
    new Date(Date.UTC(year, month, index + 1)).toISOString().slice(0, 10),
  );
}

function drawDays(rows) {
  const chart = $("usage-by-day");
  const [width, height, bottom, left] = [640, 180, 20, 48];
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const byDay = new Map(rows.map((row) => [row.key, row]));
  const days = daysOfThisMonth();
  const top = Math.max(1, ...rows.map((row) => row.total_tokens));
  const scale = (height - bottom - 10) / top;
  const slot = (width - left) / days.length;
  const children = [
    svgElement("text", { x: left - 6, y: 14, class: "axis", "text-anchor": "end" }, numbers.format(top)),
    svgElement("text", { x: left - 6, y: height - bottom, class: "axis", "text-anchor": "end" }, "0"),
    svgElement("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "baseline" }),
  ];
  days.forEach((day, index) => {
    const x = left + index * slot + 1;
    const dayNumber = Number(day.slice(8));
    if (dayNumber === 1 || dayNumber % 5 === 0) {
      children.push(svgElement("text", { x: x + slot / 2, y: height - 4, class: "axis", "text-anchor": "middle" }, String(dayNumber)));
    }
    const row = byDay.get(day);
    if (!row) return;
    const promptHeight = row.prompt_tokens * scale;
    children.push(
      stackedBar(row, (part, tokens) => ({
        x,
        width: Math.max(1, slot - 2),
        height: tokens * scale,
        y: part === "prompt" ? height - bottom - promptHeight : height - bottom - promptHeight - tokens * scale,
      })),
    );
  });
  chart.replaceChildren(...children);
}

function drawModels(rows) {
  const chart = $("usage-by-model");
  const [width, rowHeight, barHeight] = [640, 40, 14];
  const height = Math.max(1, rows.length) * rowHeight;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const top = Math.max(1, ...rows.map((row) => row.total_tokens));
  const scale = (width - 80) / top;
  const children = rows.length ? [] : [svgElement("text", { x: 0, y: 18, class: "axis" }, "No runs yet this month")];
  rows.forEach((row, index) => {
    const y = index * rowHeight;
    children.push(svgElement("text", { x: 0, y: y + 13, class: "label" }, row.key));
    children.push(
      stackedBar(row, (part, tokens) => ({
        x: part === "prompt" ? 0 : row.prompt_tokens * scale,
        y: y + 18,
        width: Math.max(tokens ? 1 : 0, tokens * scale),
        height: barHeight,
      })),
    );
    children.push(svgElement("text", { x: row.total_tokens * scale + 6, y: y + 30, class: "axis" }, numbers.format(row.total_tokens)));
  });
  chart.replaceChildren(...children);
}

async function refreshUsage() {
  if (!state.account) return;
  try {
    const [byDay, byModel] = await Promise.all(
      ["day", "model"].map((grouping) => resultOf(accountPath(`ai/usage?group_by=${grouping}`))),
    );
    drawDays(byDay.rows);
    drawModels(byModel.rows);
    const runs = byModel.rows.reduce((sum, row) => sum + row.requests, 0);
    const tokens = byModel.rows.reduce((sum, row) => sum + row.total_tokens, 0);
    $("usage-total").textContent =
      `${numbers.format(runs)} runs, ${numbers.format(tokens)} tokens since ${byModel.since.slice(0, 10)}`;
  } catch (error) {
    $("usage-total").textContent = `Usage unavailable: ${error.message}`;
  }
}

// --- wiring ----------------------------------------------------------------------------

function showMode() {
  const chat = chatMode();
  $("system-field").hidden = !chat;
  $("clear-chat").hidden = !chat || embeddingModel();
  $("prompt-label").textContent = chat ? "Your message" : "Prompt";
  renderTranscript();
}

function init() {
  const kept = sessionStorage.getItem(TOKEN_KEY);
  $("connect").addEventListener("click", connect);
  $("token").addEventListener("keydown", (event) => {
    if (event.key === "Enter") connect();
  });
  $("remember").addEventListener("change", () => setToken($("token").value));
  $("account").addEventListener("change", () => {
    state.account = $("account").value.trim();
  });
  $("model").addEventListener("change", showLimits);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", showMode);
  }
  $("send").addEventListener("click", send);
  for (const input of [$("prompt"), $("texts")]) {
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send();
    });
  }
  $("stop").addEventListener("click", () => state.run?.controller.abort());
  $("clear-chat").addEventListener("click", () => {
    state.history = [];
    $("output").textContent = "";
    renderTranscript();
  });
  $("refresh-usage").addEventListener("click", refreshUsage);
  if (kept) {
    $("token").value = kept;
    $("remember").checked = true;
    connect();
  }
}

init();
