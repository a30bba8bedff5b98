// patchd dashboard. Plain JavaScript, no framework: the page is small and
// must work offline from the binary. Every text that comes from a patch is
// put in the page as a DOM text node (textContent), never as HTML: patches
// are written by agents and may be hostile.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { csrf: "", items: [], next: "", selected: "", events: null, refresh: 0, detailOffset: 0 };

  // ---- theme -------------------------------------------------------------
  const themeBtn = $("theme");
  function effectiveTheme() {
    const t = document.documentElement.dataset.theme;
    if (t) return t;
    return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function showTheme() {
    const dark = effectiveTheme() === "dark";
    themeBtn.textContent = dark ? "Light theme" : "Dark theme";
    themeBtn.setAttribute("aria-pressed", String(dark));
  }
  try {
    const saved = localStorage.getItem("patchd-theme");
    if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage off: the system's theme */ }
  themeBtn.addEventListener("click", () => {
    const t = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = t;
    try { localStorage.setItem("patchd-theme", t); } catch (e) { /* ignore */ }
    showTheme();
  });
  showTheme();

  // ---- requests ----------------------------------------------------------
  class Refusal extends Error {
    constructor(status, body) {
      super((body && body.error) || ("HTTP " + status));
      this.status = status; this.code = body && body.code;
    }
  }
  async function call(method, path, body, contentType) {
    const headers = {};
    if (method !== "GET") headers["X-Patchd-CSRF"] = state.csrf;
    if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
    const resp = await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      if (resp.status === 401 && path !== "/ui/login") showLogin("Your session ended (expired, logged out, or the token was rotated): log in again.");
      throw new Refusal(resp.status, data);
    }
    return data;
  }

  // ---- login -------------------------------------------------------------
  function showLogin(msg) {
    stopEvents();
    $("app").hidden = true; $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = msg || "";
    $("token").focus();
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const s = await call("POST", "/ui/login", JSON.stringify({ token: $("token").value.trim() }));
      $("token").value = "";
      start(s);
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await call("POST", "/ui/logout", ""); } catch (e) { /* gone anyway */ }
    state.csrf = "";
    showLogin("Logged out.");
  });

  // ---- formatting --------------------------------------------------------
  function ago(iso) {
    if (!iso) return "";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    if (s < 60) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return new Date(iso).toLocaleDateString();
  }
  function duration(sec) {
    sec = Math.floor(sec);
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (sec % 60) + "s";
    return sec + "s";
  }
  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function badge(node, st) {
    node.textContent = st;
    node.className = "badge s-" + st;
  }
  // renderDiff fills pre with one span per line, coloured by its kind.
  function renderDiff(pre, text) {
    pre.replaceChildren();
    for (const line of text.split("\n")) {
      let cls = "";
      if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ")) cls = "file";
      else if (line.startsWith("@@")) cls = "hunk";
      else if (line.startsWith("+")) cls = "add";
      else if (line.startsWith("-")) cls = "del";
      pre.appendChild(el("span", cls, line));
    }
    pre.hidden = false;
  }

  // ---- health ------------------------------------------------------------
  async function loadStatus() {
    try {
      const s = await call("GET", "/ui/api/status");
      const st = $("h-status");
      st.textContent = s.status + (s.standbys ? " · " + s.standbys + " standing by" : "");
      st.className = "big " + (s.status === "up" ? "good" : "bad");
      $("h-uptime").textContent = duration(s.uptime_seconds);
      const q = s.queue;
      $("h-queue").textContent = q.queued + " queued · " + q.applying + " applying";
      if (s.recent) {
        $("h-hour").textContent = s.recent.applied_hour + " applied · " + s.recent.failed_hour + " failed";
        $("h-day").textContent = s.recent.applied_day + " applied · " + s.recent.failed_day + " failed";
        $("h-day").title = $("h-hour").title = "counted since " + new Date(s.recent.since).toLocaleString();
      } else {
        $("h-hour").textContent = $("h-day").textContent = "not counted";
      }
      $("h-total").textContent = q.applied + " applied · " + q.failed + " failed · " + q.reverted + " reverted";
      $("h-instance").textContent = "v" + s.version + " · pid " + s.pid + " · port " + s.port;
      const nl = $("h-notify"); nl.replaceChildren();
      for (const n of s.notify || []) {
        let line = n.receiver + ": " + n.delivered + " sent · " + n.pending + " pending";
        if (n.failed || n.gave_up) line += " · " + n.failed + " failed · " + n.gave_up + " given up";
        if (n.last_error) line += " · last error: " + n.last_error;
        nl.appendChild(el("div", n.last_error && n.pending ? "bad" : "", line));
      }
      $("h-notify-card").hidden = !(s.notify && s.notify.length);
    } catch (e) {
      $("h-status").textContent = "unreachable"; $("h-status").className = "big bad";
    }
  }

  // ---- the list ----------------------------------------------------------
  function matches(p, text) {
    if (!text) return true;
    text = text.toLowerCase();
    return [p.id, p.workspace, p.role, p.target_file, p.description, p.error, p.state].some((v) => v && String(v).toLowerCase().includes(text));
  }
  function renderList(fresh) {
    const ul = $("list"), text = $("f-text").value.trim();
    ul.replaceChildren();
    // Behind patchd gateway patches name their workspace: a Workspace
    // column, when any loaded patch has one.
    const withWS = state.items.some((p) => p.workspace);
    ul.classList.toggle("with-ws", withWS);
    let shown = 0;
    for (const p of state.items) {
      if (!matches(p, text)) continue;
      shown++;
      const li = el("li");
      if (fresh && fresh.has(p.id)) li.className = "new";
      const b = el("button");
      b.type = "button";
      b.dataset.id = p.id;
      if (p.id === state.selected) b.setAttribute("aria-current", "true");
      const bd = el("span"); badge(bd, p.state);
      const when = el("span", "when", ago(p.received_at));
      when.title = p.received_at;
      b.append(bd);
      if (withWS) {
        const ws = el("span", "ws", p.workspace || "");
        ws.title = p.workspace || "";
        b.append(ws);
      }
      b.append(el("span", "id", p.id), when,
        el("span", "sub", [p.role, p.target_file, (p.description || "").split("\n")[0]].filter(Boolean).join(" · ")));
      b.addEventListener("click", () => { location.hash = "patch=" + encodeURIComponent(p.id); });
      li.appendChild(b);
      ul.appendChild(li);
    }
    let note = shown + " shown";
    if (text) note += " (search covers the " + state.items.length + " loaded patches, not the whole history)";
    if (!state.items.length) note = "No patches yet" + ($("f-state").value ? " in this state." : ".");
    $("list-note").textContent = note;
    $("older").hidden = !state.next;
  }
  async function loadList(more) {
    const qs = new URLSearchParams();
    if ($("f-state").value) qs.set("state", $("f-state").value);
    if (more && state.next) qs.set("cursor", state.next);
    try {
      const l = await call("GET", "/ui/api/patches?" + qs);
      if (more) {
        state.items = state.items.concat(l.patches || []);
        state.next = l.next_cursor || "";
      } else {
        // The first page again: keep the older pages already loaded.
        const fresh = new Set();
        const have = new Set(state.items.map((p) => p.id));
        const first = l.patches || [];
        const ids = new Set(first.map((p) => p.id));
        for (const p of first) if (have.size && !have.has(p.id)) fresh.add(p.id);
        const rest = state.items.filter((p) => !ids.has(p.id) && first.length && p.seq < first[first.length - 1].seq);
        state.items = first.concat(rest);
        if (!rest.length) state.next = l.next_cursor || "";
        renderList(fresh);
        return;
      }
    } catch (e) {
      $("list-note").textContent = "Could not load the patches: " + e.message;
      return;
    }
    renderList();
  }
  $("f-state").addEventListener("change", () => { state.items = []; state.next = ""; loadList(false); });
  $("f-text").addEventListener("input", () => renderList());
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("older").addEventListener("click", () => loadList(true));

  // ---- live events -------------------------------------------------------
  const eventNames = ["patch.submitted", "patch.applying", "patch.applied", "patch.failed", "patch.reverted",
    "patch.requeued", "patch.dropped", "patch.resubmitted", "patch.expired", "reset"];
  function stopEvents() {
    if (state.events) { state.events.close(); state.events = null; }
    clearInterval(state.refresh);
    $("live").textContent = "offline"; $("live").className = "pill";
  }
  let pending = 0;
  function changed(id) {
    // Several events in a burst make one reload.
    clearTimeout(pending);
    pending = setTimeout(() => {
      loadList(false);
      loadStatus();
      if (state.selected && (!id || id === state.selected)) showPatch(state.selected, true);
    }, 150);
  }
  function startEvents() {
    const es = new EventSource("/events");
    state.events = es;
    es.onopen = () => { $("live").textContent = "live"; $("live").className = "pill on"; };
    es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "pill"; };
    for (const name of eventNames) {
      es.addEventListener(name, (ev) => {
        let id = "";
        try { id = JSON.parse(ev.data).id || ""; } catch (e) { /* reset */ }
        changed(name === "reset" ? "" : id);
      });
    }
  }

  // ---- one patch ---------------------------------------------------------
  function metaRow(dl, name, value) {
    if (value === undefined || value === null || value === "") return;
    dl.append(el("dt", "", name), el("dd", "", value));
  }
  function section(hId, listOrPre, show) {
    $(hId).hidden = !show; listOrPre.hidden = !show;
  }
  async function showPatch(id, quiet) {
    state.selected = id;
    for (const b of $("list").querySelectorAll("button[data-id]")) {
      if (b.dataset.id === id) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    }
    let a;
    try {
      a = await call("GET", "/ui/api/patches/" + encodeURIComponent(id));
    } catch (e) {
      $("detail-empty").hidden = false; $("detail-body").hidden = true;
      $("detail-empty").textContent = "Patch " + id + ": " + e.message;
      return;
    }
    const p = a.patch;
    $("detail-empty").hidden = true; $("detail-body").hidden = false;
    $("detail-h").textContent = "Patch " + p.id;
    badge($("d-state"), p.state);
    $("d-target").textContent = p.target_file || "";
    $("d-desc").textContent = p.description || "";
    if (!quiet) { $("d-msg").textContent = ""; $("d-confirm").hidden = true; $("d-resend").hidden = true; }
    $("d-revert").hidden = p.state !== "applied";
    $("d-edit").hidden = !(p.state === "failed" && a.body);
    state.body = a.body || "";
    section("d-error-h", $("d-error"), !!p.error);
    $("d-error").textContent = p.error ? (p.code ? "[" + p.code + "] " : "") + p.error : "";
    const dl = $("d-meta"); dl.replaceChildren();
    metaRow(dl, "Workspace", p.workspace);
    metaRow(dl, "Role", p.role);
    if (a.metadata) {
      let m = a.metadata;
      if (m && typeof m === "object" && !Array.isArray(m)) {
        for (const k of Object.keys(m)) metaRow(dl, "metadata." + k, typeof m[k] === "string" ? m[k] : JSON.stringify(m[k]));
      } else metaRow(dl, "Metadata", JSON.stringify(m));
    }
    metaRow(dl, "Received", p.received_at && new Date(p.received_at).toLocaleString());
    metaRow(dl, "Started", p.started_at && new Date(p.started_at).toLocaleString());
    metaRow(dl, "Finished", p.finished_at && new Date(p.finished_at).toLocaleString());
    metaRow(dl, "Reverted", p.reverted_at && new Date(p.reverted_at).toLocaleString());
    if (p.duration_ms) metaRow(dl, "Took", p.duration_ms.toFixed(1) + " ms");
    if (p.attempt) metaRow(dl, "Attempt", p.attempt);
    metaRow(dl, "Git commit", p.commit);
    if (p.files && p.files.length) metaRow(dl, "Files", p.files.map((f) => f.path + (f.deleted ? " (deleted)" : f.existed ? "" : " (new)")).join(", "));
    const notes = $("d-notes"); notes.replaceChildren();
    for (const n of p.notes || []) notes.appendChild(el("li", "", n));
    section("d-notes-h", notes, !!(p.notes && p.notes.length));
    if (p.diff) {
      $("d-diff-h").hidden = false;
      renderDiff($("d-diff"), p.diff);
    } else { section("d-diff-h", $("d-diff"), false); }
    state.detailOffset = p.diff_next_offset || 0;
    $("d-more").hidden = !state.detailOffset;
    const att = $("d-attempts"); att.replaceChildren();
    for (const t of p.attempts || []) {
      const li = el("li", "", "Attempt " + t.attempt + (t.code ? " [" + t.code + "]" : "") + ":");
      li.appendChild(el("pre", "refusal", t.error || ""));
      att.appendChild(li);
    }
    section("d-attempts-h", att, !!(p.attempts && p.attempts.length));
    if (!quiet) $("detail").focus({ preventScroll: false });
  }
  $("d-more").addEventListener("click", async () => {
    try {
      const a = await call("GET", "/ui/api/patches/" + encodeURIComponent(state.selected) + "?diff_offset=" + state.detailOffset);
      const pre = $("d-diff"), part = el("pre");
      renderDiff(part, a.patch.diff || "");
      pre.append(...part.childNodes);
      state.detailOffset = a.patch.diff_next_offset || 0;
      $("d-more").hidden = !state.detailOffset;
    } catch (e) { $("d-msg").textContent = e.message; }
  });
  function openFromHash() {
    const m = /^#patch=(.+)$/.exec(location.hash);
    if (m) showPatch(decodeURIComponent(m[1]));
  }
  window.addEventListener("hashchange", openFromHash);

  $("d-revert").addEventListener("click", () => {
    $("d-confirm-q").textContent = "Revert " + state.selected + "? Its files are restored as they were before it.";
    $("d-confirm").hidden = false;
    $("d-confirm-no").focus();
  });
  $("d-confirm-no").addEventListener("click", () => { $("d-confirm").hidden = true; $("d-revert").focus(); });
  $("d-confirm-yes").addEventListener("click", async () => {
    const id = state.selected;
    $("d-confirm").hidden = true;
    $("d-msg").textContent = "Reverting " + id + "…";
    try {
      const r = await call("POST", "/ui/api/patches/" + encodeURIComponent(id) + "/revert", "");
      $("d-msg").textContent = id + " is " + r.state + ".";
      showPatch(id, true);
    } catch (e) { $("d-msg").textContent = "Revert refused: " + e.message; }
  });
  $("d-edit").addEventListener("click", () => {
    let body = state.body;
    try { body = JSON.stringify(JSON.parse(body), null, 2); } catch (e) { /* as sent */ }
    $("d-body").value = body;
    $("d-resend").hidden = false;
    $("d-body").focus();
  });
  $("d-resend-cancel").addEventListener("click", () => { $("d-resend").hidden = true; $("d-edit").focus(); });
  $("d-resend").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = state.selected;
    try {
      const r = await call("POST", "/ui/api/patches/" + encodeURIComponent(id) + "/resend", $("d-body").value);
      $("d-resend").hidden = true;
      $("d-msg").textContent = id + " sent again" + (r.attempt ? " as attempt " + r.attempt : "") + ".";
      showPatch(id, true);
    } catch (e) { $("d-msg").textContent = "Resend refused: " + e.message; }
  });

  // ---- preview pad -------------------------------------------------------
  $("preview-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("p-text").value;
    let body = text;
    if (!text.trim().startsWith("{")) {
      // A bare diff, apply_patch or aider text: the block around it.
      const block = { id: "preview", role: "dashboard", patch: text };
      if ($("p-target").value.trim()) block.target_file = $("p-target").value.trim();
      body = JSON.stringify(block);
    }
    $("p-msg").textContent = "Previewing…"; $("p-msg").className = "";
    try {
      const r = await call("POST", "/ui/api/preview", body);
      $("p-msg").textContent = "Would change: " + (r.files || []).join(", ") + ((r.notes || []).length ? " — " + r.notes.join(" ") : "");
      $("p-msg").className = "good";
      renderDiff($("p-out"), r.diff || "");
    } catch (e) {
      $("p-msg").textContent = "Would be refused" + (e.code ? " (" + e.code + ")" : "") + ":";
      $("p-msg").className = "bad";
      const out = $("p-out");
      out.replaceChildren(el("span", "", e.message));
      out.className = "refusal"; out.hidden = false;
      return;
    }
    $("p-out").className = "diff";
  });

  // ---- start -------------------------------------------------------------
  function start(s) {
    state.csrf = s.csrf;
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = !!s.no_auth;
    state.items = []; state.next = "";
    loadStatus();
    loadList(false).then(openFromHash);
    startEvents();
    state.refresh = setInterval(loadStatus, 10000);
  }
  (async function init() {
    try {
      const s = await call("GET", "/ui/api/session");
      if (s.logged_in) return start(s);
      if (s.no_auth) return start(await call("POST", "/ui/login", JSON.stringify({ token: "" })));
    } catch (e) { /* fall through to the login */ }
    showLogin("");
  })();
})();
