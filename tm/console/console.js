/*
 * The Trellis console: "/" lists transactions (filters and pages in the
 * query string), "/tx?gid=GID" shows one, with its branches, ops and a
 * timeline chart, refreshed every two seconds while it is unfinished. All
 * data come from trellisd's JSON API (/api/...).
 *
 * Everything a participant or an initiator sent (gids, payloads, errors,
 * reasons, results) is put into the page as text only: nodes are built
 * with createElement / createTextNode / textContent, never from HTML
 * strings, so no text can become markup. The server's
 * Content-Security-Policy forbids inline script on top of that.
 */
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const STATUSES = ["prepared", "submitted", "aborting", "succeeded", "failed"];
  const OP_STATUSES = ["pending", "succeeded", "failed", "skipped"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  /* ---- building nodes (text only) ------------------------------------- */

  /* An element with attributes (plain strings) and children: nodes, or
   * anything else as text. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) append(e, c);
    return e;
  }

  function append(parent, child) {
    if (child === null || child === undefined) return;
    if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function known(value, list) {
    return list.includes(value) ? value : "unknown";
  }

  function statusBadge(status, list) {
    const s = known(status, list);
    return el("span", { class: "status st-" + s }, status);
  }

  function fmtTime(ms) {
    return ms > 0 ? new Date(ms).toISOString() : "-";
  }

  function fmtAge(ms) {
    if (ms < 0) ms = 0;
    const s = Math.floor(ms / 1000);
    if (ms < 1000) return ms + "ms";
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
  }

  function txLink(gid) {
    return el("a", { href: "/tx?gid=" + encodeURIComponent(gid), class: "gid" }, gid);
  }

  function showError(where, message) {
    where.replaceChildren(el("p", { class: "error", id: "error" }, message));
  }

  /* ---- the API -------------------------------------------------------- */

  async function api(path, options) {
    const r = await fetch(path, options);
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      throw new Error("HTTP " + r.status + ": the answer is not JSON");
    }
    if (!r.ok) throw new Error((body && body.error) || "HTTP " + r.status);
    return body;
  }

  let info = { writes_enabled: false };

  async function loadInfo() {
    try {
      info = await api("/api/info");
    } catch (e) {
      info = { writes_enabled: false };
    }
    document.getElementById("access").textContent = info.writes_enabled
      ? "operator actions enabled (token required)"
      : "read-only";
  }

  /* ---- the list ------------------------------------------------------- */

  const LIST_PARAMS = ["status", "older_than", "newer_than", "limit", "page_token"];

  function filterForm(params) {
    const status = el("select", { name: "status", id: "f-status" }, el("option", { value: "" }, "any"));
    for (const s of STATUSES) {
      const o = el("option", { value: s }, s);
      if (params.get("status") === s) o.defaultSelected = true;
      status.appendChild(o);
    }
    const input = (name, placeholder) => {
      const i = el("input", { name, id: "f-" + name, placeholder, size: "8" });
      i.value = params.get(name) || "";
      return i;
    };
    const form = el(
      "form",
      { class: "filters", id: "filters" },
      el("label", {}, "status", status),
      el("label", {}, "older than", input("older_than", "10m")),
      el("label", {}, "newer than", input("newer_than", "1h")),
      el("label", {}, "per page", input("limit", "100")),
      el("button", { type: "submit" }, "Filter")
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const name of ["status", "older_than", "newer_than", "limit"]) {
        const v = form.elements[name].value.trim();
        if (v) q.set(name, v);
      }
      location.assign("/?" + q.toString());
    });
    return form;
  }

  function listRow(t, now) {
    return el(
      "tr",
      { class: "tx", "data-gid": t.gid, "data-status": known(t.status, STATUSES) },
      el("td", { class: "mono" }, txLink(t.gid)),
      el("td", {}, statusBadge(t.status, STATUSES)),
      el("td", {}, fmtTime(t.created_ms)),
      el("td", {}, fmtAge(now - t.created_ms)),
      el("td", {}, fmtTime(t.finished_ms)),
      el("td", { class: "reason" }, t.reason)
    );
  }

  async function showList(main) {
    const params = new URLSearchParams(location.search);
    const q = new URLSearchParams();
    for (const name of LIST_PARAMS) if (params.get(name)) q.set(name, params.get(name));
    const heading = el("h1", {}, "Transactions");
    const form = filterForm(params);
    const out = el("div", { id: "list" });
    main.replaceChildren(heading, form, out);
    let page;
    try {
      page = await api("/api/transactions?" + q.toString());
    } catch (e) {
      showError(out, e.message);
      return;
    }
    const body = el("tbody", {});
    for (const t of page.transactions) body.appendChild(listRow(t, page.now_ms));
    const table = el(
      "table",
      { id: "tx-table" },
      el(
        "thead",
        {},
        el("tr", {}, el("th", {}, "gid"), el("th", {}, "status"), el("th", {}, "created"),
          el("th", {}, "age"), el("th", {}, "finished"), el("th", {}, "reason"))
      ),
      body
    );
    const pager = el("div", { class: "pager" });
    if (params.get("page_token")) {
      const first = new URLSearchParams(q);
      first.delete("page_token");
      pager.appendChild(el("a", { href: "/?" + first.toString(), id: "first-page" }, "first page"));
    }
    if (page.next_page_token) {
      const next = new URLSearchParams(q);
      next.set("page_token", page.next_page_token);
      pager.appendChild(el("a", { href: "/?" + next.toString(), id: "next-page" }, "next page"));
    }
    const count = el("p", { class: "note", id: "count" },
      page.transactions.length + " transaction" + (page.transactions.length === 1 ? "" : "s") + " on this page");
    out.replaceChildren(count, table, pager);
  }

  /* ---- one transaction ------------------------------------------------ */

  const FORWARD = ["action", "try", "prepare"];
  const COMMIT_SIDE = ["confirm", "commit"];

  /* The decision, derived from op times by trellisctl's rule (ctl_print.h):
   * a message is decided when its back-check op (branch 0, msg_check) ends
   * (deliver or drop); otherwise a failed forward op decides the rollback
   * at its end, and the commit is decided at the end of the last forward op
   * once every forward op succeeded and a commit-side op was called (or the
   * transaction succeeded). A rollback by abort or timeout shows only in
   * the reason. Returns {what, ms} or null. */
  function decision(t) {
    const b0 = t.branches[0];
    if (b0 && b0.mode === "msg_check" && b0.ops.length) {
      const c = b0.ops[0];
      if (c.status === "succeeded") return { what: "deliver", ms: c.finished_ms };
      if (c.status === "failed") return { what: "drop", ms: c.finished_ms };
      return null;
    }
    let firstFail = 0, lastForward = 0, allOk = true, any = false, committing = false;
    for (const b of t.branches) {
      for (const op of b.ops) {
        if (COMMIT_SIDE.includes(op.kind) && (op.attempts > 0 || op.status === "succeeded")) committing = true;
        if (!FORWARD.includes(op.kind)) continue;
        any = true;
        if (op.status === "failed" && (!firstFail || op.finished_ms < firstFail)) firstFail = op.finished_ms;
        if (op.status !== "succeeded") allOk = false;
        else if (op.finished_ms > lastForward) lastForward = op.finished_ms;
      }
    }
    if (firstFail) return { what: "rollback", ms: firstFail };
    if (any && allOk && (committing || t.status === "succeeded")) return { what: "commit", ms: lastForward };
    return null;
  }

  function facts(t, now) {
    const dl = el("dl", { class: "facts", id: "facts" });
    const add = (k, v) => {
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", {}, v));
    };
    add("status", statusBadge(t.status, STATUSES));
    add("reason", el("span", { id: "reason" }, t.reason || "-"));
    add("created", fmtTime(t.created_ms) + " (" + fmtAge(now - t.created_ms) + " ago)");
    add("updated", fmtTime(t.updated_ms));
    add("finished", fmtTime(t.finished_ms));
    const o = t.options || {};
    add("options", "timeout " + (o.timeout_to_fail_ms || 0) + " ms, retry interval " +
      (o.retry_interval_ms || 0) + " ms, request timeout " + (o.request_timeout_ms || 0) +
      " ms, retry limit " + (o.retry_limit || 0));
    if (o.listeners && o.listeners.length) add("listeners", o.listeners.join(", "));
    return dl;
  }

  function bytesCell(text, size) {
    if (!size) return el("td", {}, "-");
    const shown = text.length < size ? " (first bytes of " + size + ")" : "";
    return el("td", {}, el("pre", { class: "bytes" }, text), el("span", { class: "note" }, size + " bytes" + shown));
  }

  function opRow(b, op) {
    return el(
      "tr",
      { class: "op", "data-branch": b.branch_id, "data-op": op.kind, "data-status": known(op.status, OP_STATUSES) },
      el("td", {}, op.kind),
      el("td", { class: "mono" }, op.target),
      el("td", {}, statusBadge(op.status, OP_STATUSES)),
      el("td", {}, String(op.attempts)),
      el("td", {}, fmtTime(op.finished_ms)),
      el("td", { class: "mono last-error" }, op.last_error || "-"),
      bytesCell(op.result, op.result_bytes)
    );
  }

  function branchSection(b) {
    const title = "branch " + b.branch_id + " (" + b.mode + (b.pivot ? ", pivot" : "") +
      (b.initiator_driven ? ", registered" : "") + ")";
    const ops = el("tbody", {});
    for (const op of b.ops) ops.appendChild(opRow(b, op));
    return el(
      "section",
      { class: "branch", "data-branch": b.branch_id },
      el("h3", {}, title),
      el("div", { class: "payload" }, el("span", { class: "note" }, "payload, " + b.payload_bytes + " bytes: "),
        el("pre", { class: "bytes" }, b.payload)),
      el(
        "table",
        { class: "ops" },
        el("thead", {}, el("tr", {}, el("th", {}, "op"), el("th", {}, "target"), el("th", {}, "status"),
          el("th", {}, "attempts"), el("th", {}, "finished"), el("th", {}, "last error"), el("th", {}, "result"))),
        ops
      )
    );
  }

  /* ---- the timeline chart --------------------------------------------- */

  const LABEL_W = 190, PLOT_W = 700, ROW_H = 22, TOP = 46, RIGHT = 30;

  function timeline(t, now) {
    const rows = [];
    for (const b of t.branches) for (const op of b.ops) rows.push({ b, op });
    const d = decision(t);
    const t0 = t.created_ms;
    let tEnd = t.finished_ms || now;
    for (const { op } of rows) {
      for (const a of op.attempt_ms) tEnd = Math.max(tEnd, a);
      tEnd = Math.max(tEnd, op.finished_ms);
    }
    const span = Math.max(tEnd - t0, 1);
    const x = (ms) => LABEL_W + ((ms - t0) / span) * PLOT_W;
    const height = TOP + rows.length * ROW_H + 24;
    const s = svg("svg", {
      class: "timeline", id: "timeline", width: LABEL_W + PLOT_W + RIGHT, height,
      viewBox: "0 0 " + (LABEL_W + PLOT_W + RIGHT) + " " + height, role: "img",
    });
    s.appendChild(svg("title", {}, "timeline of transaction " + t.gid));
    const axisY = height - 18;
    s.appendChild(svg("line", { class: "axis", x1: LABEL_W, y1: axisY, x2: LABEL_W + PLOT_W, y2: axisY }));
    s.appendChild(svg("text", { x: LABEL_W, y: height - 4 }, "+0 ms"));
    s.appendChild(svg("text", { x: LABEL_W + PLOT_W, y: height - 4, "text-anchor": "end" }, "+" + (tEnd - t0) + " ms"));
    rows.forEach(({ b, op }, i) => {
      const y = TOP + i * ROW_H;
      const g = svg("g", { class: "row", "data-branch": b.branch_id, "data-op": op.kind });
      g.appendChild(svg("line", { class: "grid", x1: LABEL_W, y1: y + ROW_H / 2, x2: LABEL_W + PLOT_W, y2: y + ROW_H / 2 }));
      g.appendChild(svg("text", { x: 4, y: y + ROW_H / 2 + 4 }, b.branch_id + " " + op.kind));
      const status = known(op.status, OP_STATUSES);
      if (op.attempt_ms.length) {
        const start = op.attempt_ms[0];
        const stop = op.finished_ms || (status === "pending" ? now : op.attempt_ms[op.attempt_ms.length - 1]);
        const bar = svg("rect", {
          class: "bar op-" + status, x: x(start), y: y + 5,
          width: Math.max(x(stop) - x(start), 2), height: ROW_H - 10,
        });
        bar.appendChild(svg("title", {}, b.branch_id + " " + op.kind + ": " + op.status + ", " + op.attempts + " attempts"));
        g.appendChild(bar);
      }
      /* The end first, the attempts over it: an attempt that ended in the
       * same millisecond stays visible. */
      if (op.finished_ms && (status === "succeeded" || status === "failed")) {
        const cx = x(op.finished_ms), cy = y + ROW_H / 2;
        const end = svg("path", {
          class: "end op-" + status,
          d: "M" + cx + " " + (cy - 6) + " L" + (cx + 6) + " " + cy + " L" + cx + " " + (cy + 6) + " L" + (cx - 6) + " " + cy + " Z",
        });
        end.appendChild(svg("title", {}, op.kind + " " + op.status + " at +" + (op.finished_ms - t0) + " ms"));
        g.appendChild(end);
      }
      op.attempt_ms.forEach((ms, k) => {
        const c = svg("circle", { class: "attempt", cx: x(ms), cy: y + ROW_H / 2, r: 3 });
        c.appendChild(svg("title", {}, "attempt " + (k + 1) + " at +" + (ms - t0) + " ms"));
        g.appendChild(c);
      });
      s.appendChild(g);
    });
    const mark = (kind, ms, label, level) => {
      const mx = x(ms);
      s.appendChild(svg("line", { class: "mark " + kind, x1: mx, y1: 12 + level * 14, x2: mx, y2: axisY }));
      /* Labels near the right edge go to the left of their line. */
      const left = mx > LABEL_W + PLOT_W * 0.75;
      s.appendChild(svg("text", {
        class: "mark-label " + kind, x: left ? mx - 3 : mx + 3, y: 10 + level * 14,
        "text-anchor": left ? "end" : "start",
      }, label));
    };
    mark("created", t0, "created", 0);
    if (d) mark("decision", d.ms, "decision: " + d.what, 1);
    if (t.finished_ms) mark("finished", t.finished_ms, "finished: " + t.status, 2);
    return s;
  }

  /* ---- operator actions ----------------------------------------------- */

  function actions(gid, onDone) {
    if (!info.writes_enabled) {
      return el("p", { class: "note", id: "read-only" },
        "Read-only: trellisd was started without --http-token-file, so retry-now and force-stop " +
        "are refused here (use trellisctl).");
    }
    const token = el("input", { type: "password", id: "token", autocomplete: "off", size: "24" });
    const reason = el("input", { id: "stop-reason", size: "30", placeholder: "why (required)" });
    const result = el("span", { id: "action-result" });
    const send = async (path, body) => {
      result.textContent = "…";
      try {
        const r = await api("/api/transactions/" + encodeURIComponent(gid) + "/" + path, {
          method: "POST",
          headers: { Authorization: "Bearer " + token.value, "Content-Type": "text/plain" },
          body,
        });
        result.textContent = path === "retry-now" ? "called " + r.ops_called + " ops" : "stopped: " + r.reason;
        result.className = "";
        onDone();
      } catch (e) {
        result.textContent = e.message;
        result.className = "error";
      }
    };
    const retry = el("button", { type: "button", id: "retry-now" }, "Retry now");
    retry.addEventListener("click", () => send("retry-now", ""));
    const stop = el("button", { type: "button", id: "force-stop" }, "Force stop");
    stop.addEventListener("click", () => {
      if (confirm("Force-stop " + gid + "? Nothing is rolled back or confirmed by it.")) send("force-stop", reason.value);
    });
    return el("div", { class: "actions", id: "actions" },
      el("label", {}, "operator token", token), retry, el("label", {}, "force-stop reason", reason), stop, result);
  }

  /* ---- the transaction page ------------------------------------------- */

  async function showTransaction(main, gid) {
    const heading = el("h1", {}, "Transaction ", el("span", { class: "mono", id: "gid" }, gid));
    const data = el("div", { id: "tx" }, el("p", { class: "note" }, "Loading…"));
    const refreshNote = el("p", { class: "note", id: "refresh" });
    main.replaceChildren(el("p", {}, el("a", { href: "/" }, "← all transactions")), heading, refreshNote, data);
    let actionsShown = false;
    const load = async () => {
      let r;
      try {
        r = await api("/api/transactions/" + encodeURIComponent(gid));
      } catch (e) {
        showError(data, e.message);
        return;
      }
      const t = r.transaction;
      const finished = t.status === "succeeded" || t.status === "failed";
      const branches = el("div", { id: "branches" });
      for (const b of t.branches) branches.appendChild(branchSection(b));
      data.replaceChildren(
        facts(t, r.now_ms),
        el("h2", {}, "Timeline"),
        el("div", { id: "timeline-box" }, timeline(t, r.now_ms)),
        el("h2", {}, "Branches"),
        branches
      );
      if (!finished && !actionsShown) {
        main.insertBefore(actions(gid, load), data);
        actionsShown = true;
      }
      refreshNote.textContent = finished
        ? "finished; not refreshed"
        : "unfinished: refreshed every " + REFRESH_MS / 1000 + " s (last " + fmtTime(r.now_ms) + ")";
      if (!finished) setTimeout(load, REFRESH_MS);
    };
    await load();
  }

  async function start() {
    const main = document.getElementById("main");
    await loadInfo();
    if (location.pathname === "/tx") {
      const gid = new URLSearchParams(location.search).get("gid");
      if (!gid) showError(main, "no gid given: /tx?gid=GID");
      else await showTransaction(main, gid);
    } else {
      await showList(main);
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
