// SQLEnv web page: plain JavaScript, no build step, no external URLs.
//
// It talks to the server over the OpenEnv WebSocket at ws(s)://<host>/ws (one episode per
// socket: the server creates a session when the socket opens), and reads JSON endpoints
// next to the page: api/settings, api/questions and api/oracle/<id>. Every URL is relative
// to the page, so it also works behind a proxy that serves the page under a base path.
// The oracle's plan holds the gold answer: the server gives it for a question whose
// episode this page has finished (?episode_id=), or for any question when it runs with
// SQLENV_WEB_ORACLE=1 (api/settings says which).
"use strict";

(() => {
  // ------------------------------------------------------------------ URLs
  /** The folder the page lives in, always with a trailing slash (`/web/`). */
  function pageBase() {
    let path = location.pathname;
    if (path.endsWith("/index.html")) path = path.slice(0, -"index.html".length);
    if (!path.endsWith("/")) path += "/";
    return new URL(path, location.href);
  }
  const BASE = pageBase();
  const WS_URL = (() => {
    const url = new URL("../ws", BASE); // /web/ -> /ws, /prefix/web/ -> /prefix/ws
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    return url.href;
  })();
  const apiUrl = (path) => new URL(path, BASE).href;

  const REPLY_TIMEOUT_MS = 90_000; // the sandbox enforces its own query deadline
  const ORACLE_DELAY_MS = 400;

  // --------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Build an element: h("td", {className: "num"}, "text", childNode). */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "dataset") Object.assign(el.dataset, value);
        else if (key in el && !key.includes("-")) el[key] = value;
        else el.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  /** A reward signed with three decimals: +0.012, -0.010 (never "-0.000"). */
  function signed(value) {
    const x = Number(value) || 0;
    const fixed = Math.abs(x).toFixed(3);
    return (x < 0 && fixed !== "0.000" ? "-" : "+") + fixed;
  }

  function rewardClass(value) {
    const x = Number(value) || 0;
    if (Math.abs(x) < 0.0005) return "zero";
    return x > 0 ? "pos" : "neg";
  }

  /** An HTML table from columns and rows; NULL shown as such, numbers right-aligned. */
  function renderTable(columns, rows, caption) {
    const table = h("table", { className: "result-table" });
    if (caption) table.append(h("caption", null, caption));
    const headRow = h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)));
    table.append(h("thead", null, headRow));
    const body = h("tbody");
    for (const row of rows) {
      const tr = h("tr");
      for (const cell of row) {
        if (cell === null || cell === undefined) tr.append(h("td", { className: "null" }, "NULL"));
        else if (typeof cell === "number") tr.append(h("td", { className: "num" }, String(cell)));
        else tr.append(h("td", null, String(cell)));
      }
      body.append(tr);
    }
    if (!rows.length) {
      body.append(h("tr", null, h("td", { className: "empty", colSpan: Math.max(columns.length, 1) }, "(no rows)")));
    }
    table.append(body);
    return h("div", { className: "table-wrap" }, table);
  }

  // ------------------------------------------------------------ connection
  class ConnectionError extends Error {}

  /**
   * One WebSocket with in-order request/reply pairing (the server answers every reset,
   * step and state with exactly one frame, in order). A timeout drops the socket, since
   * a late reply would otherwise be paired with the wrong request.
   */
  class Connection {
    constructor(url, onLost) {
      this.url = url;
      this.onLost = onLost;
      this.ws = null;
      this.opening = null;
      this.pending = [];
      this.generation = 0; // bumps on every new socket = every new server session
    }

    get isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    /** Open the socket if needed. Resolves to true when a new socket was opened. */
    open() {
      if (this.isOpen) return Promise.resolve(false);
      if (this.opening) return this.opening;
      this.opening = new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new WebSocket(this.url);
        } catch (err) {
          reject(new ConnectionError(`cannot open ${this.url}: ${err.message}`));
          return;
        }
        let opened = false;
        ws.onopen = () => {
          opened = true;
          this.ws = ws;
          this.generation += 1;
          resolve(true);
        };
        ws.onmessage = (event) => this._onMessage(event);
        ws.onerror = () => {}; // a close event always follows
        ws.onclose = (event) => {
          if (!opened) reject(new ConnectionError("the server is unreachable"));
          else this._onClose(ws, event);
        };
      }).finally(() => {
        this.opening = null;
      });
      return this.opening;
    }

    request(message) {
      if (!this.isOpen) return Promise.reject(new ConnectionError("not connected"));
      return new Promise((resolve, reject) => {
        const entry = { resolve, reject, timer: 0 };
        entry.timer = setTimeout(() => {
          this._drop(new ConnectionError("the server did not reply in time"));
        }, REPLY_TIMEOUT_MS);
        this.pending.push(entry);
        this.ws.send(JSON.stringify(message));
      });
    }

    _onMessage(event) {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        frame = { type: "error", data: { message: "unreadable frame from the server", code: "CLIENT" } };
      }
      const entry = this.pending.shift();
      if (entry) {
        clearTimeout(entry.timer);
        entry.resolve(frame);
      } else if (frame && frame.type === "error") {
        // e.g. CAPACITY_REACHED sent right after connecting, before any request
        this.onLost(`Server: ${frame.data?.message || "error"}`);
      }
    }

    _onClose(ws, event) {
      if (this.ws !== ws) return;
      this.ws = null;
      this._failPending(new ConnectionError(`connection closed (code ${event.code})`));
      this.onLost("Connection to the server was lost. It will reconnect on your next action.");
    }

    _drop(error) {
      const ws = this.ws;
      this.ws = null;
      this._failPending(error);
      if (ws) ws.close();
      this.onLost(`${error.message}; it will reconnect on your next action.`);
    }

    _failPending(error) {
      const pending = this.pending;
      this.pending = [];
      for (const entry of pending) {
        clearTimeout(entry.timer);
        entry.reject(error);
      }
    }
  }

  // ----------------------------------------------------------------- state
  const app = {
    conn: null,
    episode: null, // see startEpisode()
    busy: false,
    replay: null, // {cancelled: bool} while the oracle plays
    questions: [], // last api/questions listing
    oracleOpen: false, // api/settings: the server replays any question
    finished: null, // {questionId, episodeId} of the last episode this page finished
  };

  function setStatus(text, kind = "ok") {
    const el = $("status");
    el.textContent = text;
    el.dataset.state = kind;
  }

  /** Enable or disable every control according to the current state. */
  function refreshControls() {
    const ep = app.episode;
    const replaying = app.replay !== null;
    const stepOk = Boolean(ep) && !ep.done && !app.busy && !replaying;
    for (const el of document.querySelectorAll("#tables button, #sql, #run-query, #answer, #submit-answer")) {
      el.disabled = !stepOk;
    }
    const pickOk = !app.busy && !replaying;
    for (const el of document.querySelectorAll(
      "#split, #difficulty, #db, #random, #question-select, #question-id, #go, #again-random",
    )) {
      el.disabled = !pickOk;
    }
    const watch = $("watch-oracle");
    watch.textContent = replaying ? "Stop the oracle" : "Watch the oracle";
    watch.disabled = replaying ? false : app.busy;
    watch.setAttribute("aria-pressed", replaying ? "true" : "false");
    document.body.classList.toggle("is-busy", app.busy);
  }

  function setBusy(busy) {
    app.busy = busy;
    refreshControls();
  }

  // ------------------------------------------------------------- protocol
  function frameError(frame) {
    if (!frame || typeof frame !== "object") return "unexpected reply from the server";
    if (frame.type === "error") {
      const data = frame.data || {};
      let message = data.message || "error";
      if (Array.isArray(data.errors) && data.errors.length) {
        message += ": " + data.errors.map((e) => e.msg || JSON.stringify(e)).join("; ");
      }
      return data.code ? `${message} [${data.code}]` : message;
    }
    return null;
  }

  function expect(frame, type) {
    const error = frameError(frame);
    if (error) throw new ServerError(error);
    if (frame.type !== type) throw new ServerError(`expected a ${type} frame, got ${frame.type}`);
    return frame.data;
  }

  class ServerError extends Error {}

  /**
   * Make sure a socket is open. A new socket is a new server session, so an episode in
   * progress is restored by resetting to its question and replaying its actions (the
   * engine is deterministic).
   */
  async function connect({ restore = true } = {}) {
    let fresh;
    try {
      fresh = await app.conn.open();
    } catch (err) {
      throw new ConnectionError(err.message);
    }
    const ep = app.episode;
    if (fresh && restore && ep && !ep.done && ep.generation !== app.conn.generation) {
      setStatus(`Reconnected; restoring the episode (${ep.actions.length} steps)…`, "busy");
      expect(await app.conn.request({ type: "reset", data: { question_id: ep.questionId } }), "observation");
      for (const action of ep.actions) {
        expect(await app.conn.request({ type: "step", data: action }), "observation");
      }
      ep.generation = app.conn.generation;
      ep.restored = true;
      setStatus("Reconnected and restored the episode.", "ok");
    }
    return fresh;
  }

  /**
   * Show why a question could not start right under the picker, where the person just
   * clicked (the status line is at the top of the page, often scrolled out of view), and
   * mark the id box invalid when an id was typed.
   */
  function showPickerError(text, badId) {
    const el = $("picker-error");
    el.textContent = text;
    el.hidden = false;
    const box = $("question-id");
    if (badId) {
      box.setAttribute("aria-invalid", "true");
      box.setAttribute("aria-describedby", "picker-error");
    }
    el.scrollIntoView({ block: "nearest" });
  }

  function clearPickerError() {
    $("picker-error").hidden = true;
    $("picker-error").textContent = "";
    $("question-id").removeAttribute("aria-invalid");
    $("question-id").removeAttribute("aria-describedby");
  }

  function reportFailure(err, context) {
    if (err instanceof ConnectionError) {
      setStatus(`${context}: ${err.message}. It will reconnect on your next action.`, "error");
    } else {
      setStatus(`${context}: ${err.message}`, "error");
    }
  }

  // --------------------------------------------------------------- reset
  /** Reset with the given data ({question_id} or {seed, split, difficulty, db_id}). */
  async function startEpisode(data, label) {
    setBusy(true);
    setStatus(`Starting ${label}…`, "busy");
    try {
      await connect({ restore: false });
      const reply = expect(await app.conn.request({ type: "reset", data }), "observation");
      const obs = reply.observation || {};
      let info = {};
      try {
        info = expect(await app.conn.request({ type: "state" }), "state") || {};
      } catch (err) {
        if (err instanceof ConnectionError) throw err;
        info = {}; // the episode still works without its metadata
      }
      app.episode = {
        questionId: info.question_id || data.question_id || null,
        difficulty: info.difficulty || null,
        split: info.split || null,
        budget: info.budget || (obs.budget_remaining ?? 0) + (obs.step_count ?? 0),
        obs,
        total: 0,
        done: Boolean(reply.done),
        actions: [],
        generation: app.conn.generation,
        logged: 0,
      };
      clearPickerError();
      renderEpisode();
      if (app.episode.questionId) $("question-id").value = app.episode.questionId;
      setStatus(`Episode started: ${app.episode.questionId || "question"} on ${obs.db_id}.`, "ok");
      return true;
    } catch (err) {
      reportFailure(err, "Could not start the episode");
      showPickerError(`Could not start ${label}: ${err.message}`, Boolean(data.question_id));
      return false;
    } finally {
      setBusy(false);
    }
  }

  // ---------------------------------------------------------------- step
  /** Send one action and log its result. Returns the reply data or null. */
  async function step(actionType, argument) {
    const ep = app.episode;
    if (!ep || ep.done) return null;
    setBusy(true);
    setStatus(`${actionType} in flight…`, "busy");
    const action = { action_type: actionType, argument };
    try {
      await connect();
      const frame = await app.conn.request({ type: "step", data: action });
      const error = frameError(frame);
      if (error) {
        logFrameError(action, error);
        setStatus(`The server refused the ${actionType}: ${error}`, "error");
        return null;
      }
      const reply = expect(frame, "observation");
      const obs = reply.observation || {};
      const counted = (obs.step_count ?? 0) > (ep.obs.step_count ?? 0);
      if (counted) ep.actions.push(action);
      const reward = Number(reply.reward ?? 0) || 0;
      ep.total += reward;
      ep.obs = obs;
      ep.done = Boolean(reply.done);
      logStep(action, obs, reply, counted);
      renderEpisodeHead();
      if (ep.done) {
        setStatus("Episode over.", "ok");
        await finish();
      } else {
        const note = ep.restored ? "Reconnected and restored the episode. " : "";
        ep.restored = false;
        setStatus(`${note}${actionType} ${obs.error ? "gave an error (see the log)" : "done"}.`, obs.error ? "warn" : "ok");
      }
      return reply;
    } catch (err) {
      reportFailure(err, `${actionType} failed`);
      return null;
    } finally {
      setBusy(false);
    }
  }

  /** After done: read the state frame for the verdict and the gold answer. */
  async function finish() {
    const ep = app.episode;
    let info = null;
    try {
      info = expect(await app.conn.request({ type: "state" }), "state");
      if (info && info.question_id && info.episode_id) {
        app.finished = { questionId: info.question_id, episodeId: info.episode_id };
      }
    } catch (err) {
      reportFailure(err, "Could not read the episode summary");
    }
    renderSummary(ep, info);
  }

  // ------------------------------------------------------------ rendering
  function renderEpisode() {
    const ep = app.episode;
    const obs = ep.obs;
    $("episode").hidden = false;
    $("question").textContent = obs.question || "";
    $("db-id").textContent = obs.db_id || "";
    const diff = $("episode-difficulty");
    diff.textContent = ep.difficulty || "?";
    diff.dataset.level = ep.difficulty || "";
    $("episode-question-id").textContent = ep.questionId || "?";

    const list = $("tables");
    list.replaceChildren();
    for (const name of obs.tables || []) {
      const id = String(name).replace(/[^A-Za-z0-9_-]/g, "_");
      list.append(
        h(
          "li",
          { className: "table-item", dataset: { table: name } },
          h("button", {
            type: "button",
            className: "table-name",
            title: `Insert ${name} into the SQL editor`,
            "aria-label": `Insert table ${name} into the SQL editor`,
            onclick: () => insertTableName(name),
          }, name),
          h("span", { className: "table-actions" },
            h("button", {
              type: "button",
              className: "describe",
              "data-testid": `describe-${id}`,
              "aria-label": `DESCRIBE ${name}`,
              onclick: () => step("DESCRIBE", name),
            }, "DESCRIBE"),
            h("button", {
              type: "button",
              className: "sample",
              "data-testid": `sample-${id}`,
              "aria-label": `SAMPLE ${name}`,
              onclick: () => step("SAMPLE", name),
            }, "SAMPLE"),
          ),
        ),
      );
    }
    $("step-log").replaceChildren();
    $("log-empty").hidden = false;
    $("summary").hidden = true;
    $("sql").value = "";
    $("answer").value = "";
    renderEpisodeHead();
    refreshControls();
  }

  function renderEpisodeHead() {
    const ep = app.episode;
    const obs = ep.obs;
    const steps = obs.step_count ?? 0;
    $("budget-left").textContent = `${obs.budget_remaining ?? 0} of ${ep.budget}`;
    $("steps").textContent = String(steps);
    const total = $("total-reward");
    total.textContent = signed(ep.total);
    total.dataset.value = String(ep.total);
    total.dataset.sign = rewardClass(ep.total);
    $("schema-info").textContent = obs.schema_info || "";
    const described = new Set();
    for (const line of (obs.schema_info || "").split("\n").slice(1)) {
      const name = line.split("(")[0].trim();
      if (name) described.add(name);
    }
    for (const item of document.querySelectorAll("#tables .table-item")) {
      item.classList.toggle("described", described.has(item.dataset.table));
    }
    refreshControls();
  }

  function insertTableName(name) {
    const sql = $("sql");
    if (sql.disabled) return;
    const quoted = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
    const start = sql.selectionStart ?? sql.value.length;
    const end = sql.selectionEnd ?? sql.value.length;
    sql.setRangeText(quoted, start, end, "end");
    sql.focus();
  }

  function rewardBreakdown(breakdown) {
    const b = breakdown || {};
    const layers = ["operational", "progress", "terminal"].map((layer) =>
      h("span", {
        className: `layer layer-${layer}`,
        dataset: { value: String(b[layer] ?? 0), sign: rewardClass(b[layer]) },
      }, h("span", { className: "layer-name" }, layer), " ", h("span", { className: "num" }, signed(b[layer]))),
    );
    return h("div", { className: "reward-breakdown", "aria-label": "reward by layer" }, layers);
  }

  function logStep(action, obs, reply, counted) {
    const ep = app.episode;
    const reward = Number(reply.reward ?? 0) || 0;
    ep.logged += 1;
    const number = counted ? `#${obs.step_count}` : "·";
    const item = h("li", {
      className: `log-entry step${obs.error ? " has-error" : ""}${counted ? "" : " not-counted"}`,
      dataset: { step: String(obs.step_count ?? 0), action: action.action_type, reward: String(reward) },
    });
    const argClass = action.action_type === "QUERY" ? "step-arg mono block" : "step-arg mono";
    item.append(
      h("div", { className: "step-head" },
        h("span", { className: "step-no", title: counted ? "step number" : "not counted against the budget" }, number),
        h("span", { className: `action-badge action-${action.action_type}` }, action.action_type),
        h("code", { className: argClass }, action.argument),
        h("span", {
          className: "reward-total num",
          title: "reward of this step",
          dataset: { value: String(reward), sign: rewardClass(reward) },
        }, signed(reward)),
      ),
      rewardBreakdown(obs.reward_breakdown),
    );
    const body = h("div", { className: "step-body" });
    if (obs.error) {
      body.append(h("p", { className: "step-error", role: "note" }, h("strong", null, "Error: "), obs.error));
    }
    if (obs.table && Array.isArray(obs.table.columns)) {
      const t = obs.table;
      const firstLine = (obs.result || "").split("\n")[0];
      let caption;
      if (action.action_type === "DESCRIBE") caption = firstLine;
      else {
        const total = `${Number(t.total_rows).toLocaleString()}${t.total_is_lower_bound ? "+" : ""}`;
        caption = t.rows.length < t.total_rows || t.total_is_lower_bound
          ? `${t.rows.length} of ${total} rows shown`
          : `${total} row${t.total_rows === 1 ? "" : "s"}`;
      }
      let rows = t.rows;
      if (action.action_type === "DESCRIBE") {
        // primary_key / not_null arrive as 1/0: show them as check marks
        const flags = t.columns.map((c) => c === "primary_key" || c === "not_null");
        rows = rows.map((row) => row.map((cell, i) => (flags[i] ? (cell ? "✓" : "") : (cell ?? ""))));
      }
      body.append(renderTable(t.columns, rows, caption));
      if (obs.result) {
        body.append(h("details", { className: "agent-text" },
          h("summary", null, "Text the agent sees"),
          h("pre", { className: "mono" }, obs.result)));
      }
    } else if (obs.result) {
      const verdict = action.action_type === "ANSWER"
        ? (obs.result.startsWith("Correct") ? " verdict-correct" : " verdict-incorrect")
        : "";
      body.append(h("pre", { className: `result-text mono${verdict}` }, obs.result));
    }
    if (obs.table && /Budget exhausted/.test(obs.result || "")) {
      body.append(h("p", { className: "step-note" }, "Budget exhausted: the episode is over without an answer."));
    }
    if (!counted) body.append(h("p", { className: "hint" }, "Not counted: the episode did not change."));
    item.append(body);
    const log = $("step-log");
    log.prepend(item);
    $("log-empty").hidden = true;
  }

  function logFrameError(action, message) {
    const item = h("li", { className: "log-entry error-frame", role: "alert" },
      h("div", { className: "step-head" },
        h("span", { className: "step-no" }, "!"),
        h("span", { className: `action-badge action-${action.action_type}` }, action.action_type),
        h("code", { className: "step-arg mono" }, action.argument)),
      h("p", { className: "step-error" }, h("strong", null, "Server error: "), message));
    $("step-log").prepend(item);
    $("log-empty").hidden = true;
  }

  function renderSummary(ep, info) {
    const panel = $("summary");
    panel.hidden = false;
    const verdict = $("summary-verdict");
    let text;
    let kind;
    if (info && info.correct === true) {
      text = "Correct: the answer matches the gold rows.";
      kind = "correct";
    } else if (info && info.correct === false) {
      text = "Incorrect: the answer does not match the gold rows.";
      kind = "incorrect";
    } else if (info && info.truncated) {
      text = "Budget exhausted: no answer was given.";
      kind = "truncated";
    } else {
      text = "The episode is over.";
      kind = "unknown";
    }
    verdict.textContent = text;
    verdict.dataset.verdict = kind;
    panel.dataset.correct = kind === "correct" ? "true" : "false";

    const total = info ? Number(info.total_reward) : ep.total;
    const ret = $("summary-return");
    ret.textContent = signed(total);
    ret.dataset.value = String(total);
    $("summary-steps").textContent = info ? `${info.step_count} of ${info.budget}` : String(ep.obs.step_count ?? 0);
    const layers = (info && info.reward_by_layer) || {};
    $("summary-layers").textContent =
      `operational ${signed(layers.operational)} · progress ${signed(layers.progress)} · terminal ${signed(layers.terminal)}`;
    $("summary-answer").textContent = info && info.answer != null ? info.answer : "(none)";
    $("gold-sql").textContent = (info && info.gold_sql) || "(not available)";
    const gold = $("gold-rows");
    gold.replaceChildren();
    if (info && Array.isArray(info.gold_rows)) {
      const rows = info.gold_rows;
      const shown = rows.slice(0, 50);
      const caption = rows.length > shown.length ? `${shown.length} of ${rows.length} rows shown` : `${rows.length} row${rows.length === 1 ? "" : "s"}`;
      gold.append(renderTable(info.gold_columns || [], shown, caption).firstChild);
    } else {
      gold.textContent = "(not available)";
    }
    refreshControls();
    if (!app.replay) panel.focus({ preventScroll: false });
  }

  // ------------------------------------------------------------- oracle
  async function watchOracle() {
    if (app.replay) {
      app.replay.cancelled = true;
      return;
    }
    let qid = $("question-id").value.trim();
    if (!qid && app.episode) qid = app.episode.questionId || "";
    const finished = app.finished && app.finished.questionId === qid ? app.finished : null;
    if (!app.oracleOpen && !finished) {
      setStatus(
        `The oracle replays a question once you have finished an episode of it${qid ? ` (${qid})` : ""}: ` +
          "its plan holds the gold answer. (A server started with SQLENV_WEB_ORACLE=1 replays any question.)",
        "warn",
      );
      return;
    }
    const replay = { cancelled: false };
    app.replay = replay;
    refreshControls();
    try {
      if (!qid) {
        if (!(await startEpisode(randomResetData(), "a random question"))) return;
        qid = app.episode.questionId;
        if (!qid) throw new ServerError("the server did not say which question this is");
      }
      setStatus(`Fetching the oracle's plan for ${qid}…`, "busy");
      const query = finished ? `?episode_id=${encodeURIComponent(finished.episodeId)}` : "";
      const response = await fetch(apiUrl(`api/oracle/${encodeURIComponent(qid)}${query}`), {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new ServerError(`the oracle is not available for ${qid} (HTTP ${response.status}${await responseDetail(response)})`);
      const body = await response.json();
      const actions = Array.isArray(body) ? body : body.actions;
      if (!Array.isArray(actions)) throw new ServerError("unexpected oracle reply");
      if (!(await startEpisode({ question_id: qid }, `question ${qid}`))) return;
      setStatus(`The oracle plays ${actions.length} steps…`, "busy");
      for (const action of actions) {
        await sleep(ORACLE_DELAY_MS);
        if (replay.cancelled || !app.episode || app.episode.done) break;
        const type = String(action.action_type || "").toUpperCase();
        showOracleAction(type, action.argument ?? "");
        const reply = await step(type, action.argument ?? "");
        if (!reply) break;
      }
      if (replay.cancelled) setStatus("Oracle replay stopped; you can carry on by hand.", "ok");
    } catch (err) {
      reportFailure(err, "Watch the oracle");
    } finally {
      app.replay = null;
      refreshControls();
    }
  }

  function showOracleAction(type, argument) {
    if (type === "QUERY") $("sql").value = argument;
    else if (type === "ANSWER") $("answer").value = argument;
    for (const item of document.querySelectorAll("#tables .table-item")) {
      item.classList.toggle("oracle-focus", (type === "DESCRIBE" || type === "SAMPLE") && item.dataset.table === argument);
    }
  }

  async function responseDetail(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return `: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`;
    } catch {
      // not JSON
    }
    return "";
  }

  // ------------------------------------------------------------ questions
  function filters() {
    return {
      split: $("split").value,
      difficulty: $("difficulty").value,
      db_id: $("db").value,
    };
  }

  function randomResetData() {
    const f = filters();
    const data = { seed: Math.floor(Math.random() * 2 ** 31) };
    if (f.split) data.split = f.split;
    if (f.difficulty) data.difficulty = f.difficulty;
    if (f.db_id) data.db_id = f.db_id;
    return data;
  }

  let questionsRequest = 0;

  async function loadQuestions() {
    const ticket = ++questionsRequest;
    const f = filters();
    const params = new URLSearchParams();
    if (f.split) params.set("split", f.split);
    if (f.difficulty) params.set("difficulty", f.difficulty);
    if (f.db_id) params.set("db_id", f.db_id);
    params.set("limit", "500");
    const select = $("question-select");
    try {
      const response = await fetch(apiUrl(`api/questions?${params}`), { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}${await responseDetail(response)}`);
      const body = await response.json();
      if (ticket !== questionsRequest) return; // a newer request won
      const questions = Array.isArray(body) ? body : body.questions || [];
      app.questions = questions;
      if (Array.isArray(body.splits) && fillSplits(body.splits)) {
        loadQuestions(); // the split asked for is not in this data: list every split's
        return;
      }
      if (Array.isArray(body.db_ids)) fillDatabases(body.db_ids);
      const total = typeof body.total === "number" ? body.total : questions.length;
      select.replaceChildren(
        h("option", { value: "" }, `(choose one of ${total}${total > questions.length ? `, first ${questions.length} shown` : ""})`),
        ...questions.map((q) => h("option", { value: q.id, title: q.question },
          `${q.id} · ${q.difficulty} · ${q.db_id}: ${truncate(q.question, 90)}`)),
      );
    } catch (err) {
      if (ticket !== questionsRequest) return;
      select.replaceChildren(h("option", { value: "" }, "(question list unavailable)"));
      setStatus(`Could not load the question list: ${err.message}`, "warn");
    }
  }

  /** Offer the data's splits (the server's, not a fixed list); true when the selected
   * split is not among them and the selection fell back to "any". */
  function fillSplits(splits) {
    const select = $("split");
    const current = select.value;
    const existing = [...select.options].slice(1).map((o) => o.value);
    if (existing.length === splits.length && existing.every((v, i) => v === splits[i])) return false;
    select.replaceChildren(h("option", { value: "" }, "any"), ...splits.map((name) => h("option", { value: name }, name)));
    const kept = splits.includes(current) ? current : "";
    select.value = kept;
    return kept !== current;
  }

  function fillDatabases(dbIds) {
    const select = $("db");
    const current = select.value;
    const ids = [...new Set(dbIds)].sort();
    if (current && !ids.includes(current)) ids.unshift(current);
    const existing = [...select.options].slice(1).map((o) => o.value);
    if (existing.length === ids.length && existing.every((v, i) => v === ids[i])) return;
    select.replaceChildren(h("option", { value: "" }, "any"), ...ids.map((id) => h("option", { value: id }, id)));
    select.value = current;
  }

  function truncate(text, limit) {
    const s = String(text ?? "");
    return s.length <= limit ? s : `${s.slice(0, limit - 1)}…`;
  }

  // --------------------------------------------------------------- wiring
  function wire() {
    $("random").addEventListener("click", () => startEpisode(randomResetData(), "a random question"));
    $("again-random").addEventListener("click", () => startEpisode(randomResetData(), "a random question"));
    $("by-id").addEventListener("submit", (event) => {
      event.preventDefault();
      const qid = $("question-id").value.trim();
      if (!qid) {
        setStatus("Type a question id first (or pick one from the list).", "warn");
        $("question-id").focus();
        return;
      }
      startEpisode({ question_id: qid }, `question ${qid}`);
    });
    $("question-id").addEventListener("input", clearPickerError);
    $("question-select").addEventListener("change", (event) => {
      if (event.target.value) $("question-id").value = event.target.value;
    });
    $("split").addEventListener("change", () => {
      $("db").value = ""; // databases belong to one split
      loadQuestions();
    });
    $("difficulty").addEventListener("change", loadQuestions);
    $("db").addEventListener("change", loadQuestions);
    $("watch-oracle").addEventListener("click", watchOracle);
    $("run-query").addEventListener("click", () => step("QUERY", $("sql").value));
    $("sql").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (!$("run-query").disabled) step("QUERY", $("sql").value);
      }
    });
    $("answer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!$("submit-answer").disabled) step("ANSWER", $("answer").value);
    });
  }

  async function loadSettings() {
    try {
      const response = await fetch(apiUrl("api/settings"), { headers: { Accept: "application/json" } });
      if (response.ok) app.oracleOpen = Boolean((await response.json()).oracle_open);
    } catch {
      // an older server: the oracle answers for itself
    }
  }

  async function init() {
    app.conn = new Connection(WS_URL, (message) => setStatus(message, "disconnected"));
    wire();
    refreshControls();
    loadSettings();
    loadQuestions();
    const wanted = new URLSearchParams(location.search).get("q");
    if (wanted) {
      $("question-id").value = wanted;
      await startEpisode({ question_id: wanted }, `question ${wanted}`);
      return;
    }
    try {
      await app.conn.open();
      setStatus("Connected. Pick a question to start.", "ok");
    } catch (err) {
      setStatus(`Server unreachable (${err.message}); it will retry on your next action.`, "disconnected");
    }
  }

  // Exposed for debugging in the console and for tests; the page does not rely on it.
  window.sqlenv = { app, wsUrl: WS_URL };

  init();
})();
