// dlm serve's page: sends a prompt to /v1/completions with stream and dlm_events, and draws
// the canvas step by step from the dlm.step events (masked cells, the latest commits
// highlighted), with NFE, tokens/s and elapsed time. A Sudoku model's canvas is also drawn as
// its grid; a task model's answer is shown in the task's form at the end (/v1/dlm/render).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, frames: [], running: false };
window.dlmFrames = state.frames; // one entry per drawn step: the canvas as text, "·" for a mask

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value;
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function loadInfo() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (response.status === 401) {
    $("key-row").hidden = false;
    $("model-name").textContent = "API key needed";
    return;
  }
  const body = await response.json();
  const card = body.data[0];
  state.info = card.dlm;
  $("model-name").textContent = card.id;
  const task = card.dlm.task;
  $("task-name").textContent = task ? "task: " + task.name : "";
  const defaults = card.dlm.generation_defaults || {};
  for (const name of ["steps", "policy", "block_length", "threshold", "cache", "temperature"]) {
    if (defaults[name] !== undefined && defaults[name] !== null) $(name).value = defaults[name];
  }
  if (defaults.max_new_tokens) $("max_tokens").value = defaults.max_new_tokens;
}

function requestBody() {
  const body = {
    prompt: $("prompt").value,
    max_tokens: Number($("max_tokens").value),
    stream: true,
    dlm_events: true,
    policy: $("policy").value,
    cache: $("cache").value,
    temperature: Number($("temperature").value || 0),
  };
  for (const name of ["steps", "block_length", "threshold"]) {
    const value = $(name).value;
    if (value !== "") body[name] = Number(value);
  }
  return body;
}

// Server-sent events from a fetch body: yields {event, data} (sse-starlette ends lines with \r\n).
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class CanvasView {
  constructor(length) {
    this.cells = [];
    this.texts = new Array(length).fill(null);
    const root = $("canvas");
    root.replaceChildren();
    for (let i = 0; i < length; i++) {
      const cell = document.createElement("span");
      cell.className = "cell mask";
      cell.textContent = "·";
      root.appendChild(cell);
      this.cells.push(cell);
    }
    this.board = sudokuBoard(length);
  }
  apply(step) {
    for (const cell of this.cells) cell.classList.remove("fresh");
    step.positions.forEach((position, k) => {
      const cell = this.cells[position];
      const text = step.texts[k];
      this.texts[position] = text;
      cell.textContent = text === "" ? "␣" : text;
      cell.className = "cell fresh" + (text === "" ? " pad" : "");
    });
    if (this.board) this.board.apply(step, this.texts);
    state.frames.push(this.texts.map((t) => (t === null ? "·" : t)).join(""));
  }
}

// A Sudoku model's canvas as its grid: the prompt's givens and the region's cells filling in.
function sudokuBoard(length) {
  const root = $("board");
  root.replaceChildren();
  const task = state.info && state.info.task;
  if (!task || task.name !== "sudoku") return null;
  const rows = task.options.box_rows || 3, cols = task.options.box_cols || 3;
  const n = rows * cols;
  if (length < n * n) return null;
  const givens = $("prompt").value.trim();
  const table = document.createElement("table");
  const tds = [];
  for (let r = 0; r < n; r++) {
    const tr = document.createElement("tr");
    if ((r + 1) % rows === 0 && r + 1 < n) tr.className = "box-bottom";
    for (let c = 0; c < n; c++) {
      const td = document.createElement("td");
      const given = givens[r * n + c];
      if (given && given !== "0" && given !== ".") { td.textContent = given; td.className = "given"; }
      else { td.textContent = "·"; td.className = "mask"; }
      if ((c + 1) % cols === 0 && c + 1 < n) td.classList.add("box-right");
      tr.appendChild(td);
      tds.push(td);
    }
    table.appendChild(tr);
  }
  root.appendChild(table);
  return {
    apply(step, texts) {
      for (const td of tds) td.classList.remove("fresh");
      for (const position of step.positions) {
        if (position >= n * n) continue;
        const td = tds[position];
        if (td.classList.contains("given")) continue;
        td.textContent = texts[position];
        td.classList.remove("mask");
        td.classList.add("fresh");
      }
    },
  };
}

// A task model's answer in the task's own form (a Sudoku grid, a chess board and line).
async function showRendered(text) {
  if (!(state.info && state.info.task)) return;
  const rendered = await fetch("/v1/dlm/render", {
    method: "POST", headers: headers(),
    body: JSON.stringify({ prompt: $("prompt").value, text }),
  });
  if (rendered.ok) $("rendered").textContent = (await rendered.json()).rendered;
}

async function run() {
  if (state.running) return;
  state.running = true;
  state.frames.length = 0;
  $("error").textContent = "";
  $("output").textContent = "";
  $("rendered").textContent = "";
  $("run").disabled = true;
  const delay = Number($("delay").value || 0);
  const started = performance.now();
  let view = null, tokens = 0, slept = 0;
  try {
    await showRendered("");  // a chess model's board before its line is predicted
    const body = requestBody();
    const response = await fetch("/v1/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error((error.error && error.error.message) || response.statusText);
    }
    for await (const { event, data } of sseEvents(response)) {
      if (data === "[DONE]") break;
      const payload = JSON.parse(data);
      if (event === "dlm.step") {
        if (!view) view = new CanvasView(payload.length);
        view.apply(payload);
        tokens += payload.positions.length;
        const seconds = (performance.now() - started - slept) / 1000;
        $("stat-step").textContent = payload.step + 1;
        $("stat-nfe").textContent = payload.nfe;
        $("stat-masked").textContent = payload.masked;
        $("stat-tps").textContent = (tokens / Math.max(seconds, 1e-3)).toFixed(0);
        $("stat-elapsed").textContent = (1000 * seconds).toFixed(0) + " ms";
        if (delay) { await sleep(delay); slept += delay; }
      } else if (event === "dlm.done") {
        $("stat-nfe").textContent = payload.nfe;
        if (payload.wall_time > 0) {
          $("stat-tps").textContent = (payload.tokens / payload.wall_time).toFixed(0);
          $("stat-elapsed").textContent = (1000 * payload.wall_time).toFixed(0) + " ms (server)";
        }
      } else if (payload.error) {
        throw new Error(payload.error.message);
      } else if (payload.choices && payload.choices.length) {
        $("output").textContent += payload.choices[0].text || "";
      }
    }
    await showRendered($("output").textContent);
  } catch (error) {
    $("error").textContent = String(error.message || error);
  } finally {
    state.running = false;
    $("run").disabled = false;
    document.body.dataset.done = String(state.frames.length);
  }
}

$("run").addEventListener("click", run);
$("api-key").addEventListener("change", loadInfo);
loadInfo().catch((error) => { $("error").textContent = String(error); });
