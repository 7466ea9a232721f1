/* Roost console: live updates, relative times, selections, confirmations. No framework, no build.
 *
 * Data comes from the console itself: its event stream (/api/stream, server-sent events),
 * its JSON API (/api/...) and its page fragments (/fragments/...). Fragments are HTML the
 * server rendered with autoescaping, put in place as they came; everything else that is
 * user-provided is written with textContent, never as HTML.
 */
(function () {
  "use strict";

  var body = document.body;
  var page = body.dataset.page || "";
  /* The server's clock minus this browser's: the page says when the server rendered it,
   * which is when this browser received the response (not when this script runs). */
  var skewMs = 0;
  (function () {
    var rendered = parseFloat(body.dataset.now || "0") * 1000;
    if (!rendered) return;
    var nav = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    var received = nav ? performance.timeOrigin + nav.responseStart : Date.now();
    skewMs = rendered - received;
  })();
  function nowS() { return (Date.now() + skewMs) / 1000; }
  var SAVES = ["committed", "scheduled", "done"];

  /* ---- small DOM helpers ------------------------------------------------------------ */

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = String(v);
        else if (k === "cls") node.className = v;
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function pathId(id) {
    return encodeURIComponent(id).replace(/%2F/g, "/").replace(/%3A/g, ":").replace(/%40/g, "@");
  }
  function workUrl(id) { return "/work/" + pathId(id); }

  function fetchOk(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: accept } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r;
    });
  }
  function getJSON(url) { return fetchOk(url, "application/json").then(function (r) { return r.json(); }); }

  /* ---- times ------------------------------------------------------------------------ */

  function ago(ts) {
    if (!ts) return "—";
    var d = nowS() - ts;
    var future = d < 0;
    d = Math.abs(d);
    var t;
    if (d < 1) return "just now";
    if (d < 60) t = Math.floor(d) + " s";
    else if (d < 3600) t = Math.floor(d / 60) + " min";
    else if (d < 86400) t = Math.floor(d / 3600) + " h";
    else t = Math.floor(d / 86400) + " d";
    return future ? "in " + t : t + " ago";
  }

  function localTime(ts) {
    return new Date(ts * 1000).toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
  }

  function when(ts, absolute) {
    if (!ts) return el("span", { cls: "muted", text: "—" });
    var t = el("time", {
      datetime: new Date(ts * 1000).toISOString(), "data-ts": ts, title: localTime(ts), text: ago(ts)
    });
    if (!absolute) return t;
    var frag = document.createDocumentFragment();
    frag.appendChild(t);
    frag.appendChild(document.createTextNode(" "));
    frag.appendChild(el("span", { cls: "abs", "data-abs": ts, text: localTime(ts) }));
    return frag;
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-ts]").forEach(function (t) {
      var ts = parseFloat(t.dataset.ts);
      t.textContent = ago(ts);
      if (!t.dataset.local) { t.title = localTime(ts); t.dataset.local = "1"; }
    });
    (root || document).querySelectorAll(".abs[data-abs]").forEach(function (s) {
      if (!s.dataset.local) { s.textContent = localTime(parseFloat(s.dataset.abs)); s.dataset.local = "1"; }
    });
  }

  /* ---- pieces mirrored from the templates (_macros.html) ---------------------------- */

  function badge(state) {
    return el("span", { cls: "badge st-" + state, "data-state": state, text: state });
  }

  function eventItem(ev, showWork) {
    return el("li", { cls: "ev ev-" + ev.type + " fresh", "data-id": ev.id, "data-type": ev.type, "data-ts": ev.ts },
      el("span", { cls: "ev-time" }, when(ev.ts)),
      el("span", { cls: "ev-type", text: ev.type }),
      showWork ? el("a", { cls: "mono wid", href: workUrl(ev.work_id), title: ev.work_id, text: ev.work_id }) : null,
      el("span", { cls: "ev-text", text: ev.summary || ev.type }),
      ev.worker ? el("span", { cls: "ev-worker mono small", title: "worker", text: ev.worker }) : null);
  }

  function scalar(v) {
    if (v === null) return el("span", { cls: "jnull", text: "null" });
    if (typeof v === "boolean") return el("span", { cls: "jbool", text: v ? "true" : "false" });
    if (typeof v === "number") return el("span", { cls: "jnum", text: String(v) });
    var s = String(v);
    if (s.length > 2000) s = s.slice(0, 1999) + "…";
    return el("span", { cls: "jstr", text: "\"" + s + "\"" });
  }

  function tree(value, key, depth, path, open) {
    var label = document.createDocumentFragment();
    if (key !== null) {
      label.appendChild(el("span", { cls: "jkey", text: String(key) }));
      label.appendChild(document.createTextNode(": "));
    }
    var isArr = Array.isArray(value);
    var isObj = value !== null && typeof value === "object" && !isArr;
    var n = isArr ? value.length : isObj ? Object.keys(value).length : 0;
    if (depth > 40) return el("span", { cls: "jl" }, label, el("span", { cls: "muted", text: "… (nested too deep)" }));
    if ((isArr || isObj) && n > 0) {
      var wasOpen = open.known.has(path) ? open.has(path) : depth < 2;
      var d = el("details", { cls: "jt", "data-path": path, open: wasOpen });
      var brace = isArr ? "[\u00a0" + n + "\u00a0]" : "{\u00a0" + n + "\u00a0}";
      d.appendChild(el("summary", null, label, el("span", { cls: "jbrace", text: brace })));
      var ul = el("ul");
      if (isArr) {
        value.forEach(function (v, i) { ul.appendChild(el("li", null, tree(v, i, depth + 1, path + "[" + i + "]", open))); });
      } else {
        Object.keys(value).forEach(function (k) { ul.appendChild(el("li", null, tree(value[k], k, depth + 1, path + "." + k, open))); });
      }
      d.appendChild(ul);
      return d;
    }
    if (isArr || isObj) return el("span", { cls: "jl" }, label, el("span", { cls: "jbrace", text: isArr ? "[]" : "{}" }));
    return el("span", { cls: "jl" }, label, scalar(value));
  }

  function rebuildTree(container, data) {
    var open = new Set();
    open.known = new Set();
    container.querySelectorAll("details[data-path]").forEach(function (d) {
      open.known.add(d.dataset.path);
      if (d.open) open.add(d.dataset.path);
    });
    container.replaceChildren(tree(data, null, 0, "$", open));
  }

  function setField(name, node) {
    document.querySelectorAll('[data-f="' + name + '"]').forEach(function (target) {
      if (typeof node === "string") target.textContent = node;
      else target.replaceChildren(node.cloneNode(true));
    });
  }

  function filesize(n) {
    if (n < 1000) return n + " B";
    var units = ["kB", "MB", "GB"];
    var v = n;
    for (var i = 0; i < units.length; i++) {
      v /= 1000;
      if (v < 1000 || i === units.length - 1) return v.toFixed(1) + " " + units[i];
    }
    return n + " B";
  }

  /* ---- live connection ---------------------------------------------------------------- */

  var liveDot = document.getElementById("live");
  function setLive(status, title) {
    if (!liveDot) return;
    liveDot.hidden = false;
    liveDot.dataset.status = status;
    liveDot.title = title;
    liveDot.textContent = status === "on" ? "live" : status === "retry" ? "reconnecting" : "polling";
  }

  /* Run fn at most once per `ms` milliseconds (a number, or a function giving one), and
   * once more after the last call that came while it waited or ran. */
  function throttle(fn, ms) {
    var timer = null, again = false, last = 0;
    var every = typeof ms === "function" ? ms : function () { return ms; };
    function run() {
      timer = null;
      last = Date.now();
      again = false;
      Promise.resolve(fn()).catch(function () { /* shown by the live dot */ }).then(function () {
        if (again) schedule();
      });
    }
    function schedule() {
      if (timer) { again = true; return; }
      var wait = Math.max(150, every() - (Date.now() - last));
      timer = setTimeout(run, wait);
    }
    return schedule;
  }

  function follow(params, onEvent, onReconnect, pollMs) {
    var pollTimer = null;
    function poll() {
      if (pollTimer) return;
      setLive("off", "Live stream unavailable; refreshing every " + pollMs / 1000 + " s");
      pollTimer = setInterval(onReconnect, pollMs);
    }
    if (!window.EventSource) { poll(); return; }
    var qs = new URLSearchParams(params).toString();
    var src = new EventSource("/api/stream" + (qs ? "?" + qs : ""));
    src.addEventListener("open", function () {
      setLive("on", "Connected: updates arrive as they happen");
      onReconnect();
    });
    src.addEventListener("runtime", function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      onEvent(ev);
    });
    src.addEventListener("problem", function () { setLive("retry", "Redis is not answering; retrying"); });
    src.addEventListener("error", function () {
      if (src.readyState === EventSource.CLOSED) poll();
      else setLive("retry", "Connection lost; reconnecting");
    });
  }

  function prependEvent(list, ev, showWork) {
    if (!list) return;
    var skip = (list.dataset.skip || "").split(" ");
    if (skip.indexOf(ev.type) >= 0) return;
    if (list.querySelector('li[data-id="' + CSS.escape(ev.id) + '"]')) return;
    var empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    list.insertBefore(eventItem(ev, showWork), list.firstChild);
    var limit = parseInt(list.dataset.limit || "0", 10);
    while (limit && list.children.length > limit) list.removeChild(list.lastChild);
  }

  /* ---- live regions: server-rendered fragments, reloaded when events arrive ------------ */

  /* A region is reloaded at most every data-live-ms, and never more often than five times
   * what its last reload took (an old item's timeline in a busy namespace is slow to read). */
  function liveRegion(region) {
    var base = parseInt(region.dataset.liveMs || "1500", 10);
    var cost = 0;
    return throttle(function () {
      var started = Date.now();
      return fetchOk(region.dataset.live, "text/html").then(function (r) { return r.text(); }).then(function (html) {
        cost = Date.now() - started;
        var fresh = document.createElement("template");
        fresh.innerHTML = html;  /* the console's own autoescaped template output */
        var chosen = selectedIds();
        region.replaceChildren(fresh.content);
        restoreSelection(chosen);
        refreshTimes(region);
        region.dataset.loaded = String(Date.now());
      });
    }, function () { return Math.max(base, 5 * cost); });
  }

  function liveRegions() {
    var refreshers = [];
    document.querySelectorAll("[data-live]").forEach(function (region) {
      var refresh = liveRegion(region);
      refreshers.push(refresh);
      if (region.dataset.liveNow) refresh();
    });
    return function () { refreshers.forEach(function (r) { r(); }); };
  }

  /* ---- selections and bulk actions ------------------------------------------------------ */

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll('input[type="checkbox"][name="work_id"][form="bulk"]'));
  }

  function selectedIds() {
    return boxes().filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
  }

  function restoreSelection(ids) {
    boxes().forEach(function (b) { b.checked = ids.indexOf(b.value) >= 0; });
    updateBulk();
  }

  function updateBulk() {
    var form = document.getElementById("bulk");
    if (!form) return;
    var n = selectedIds().length;
    form.querySelectorAll("button[name=action]").forEach(function (b) { b.disabled = n === 0; });
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = n ? n + " selected" : "Select items with the boxes to act on several at once.";
    form.classList.toggle("active", n > 0);
    document.querySelectorAll("input.select-all").forEach(function (all) {
      var own = all.closest("table").querySelectorAll('input[name="work_id"]');
      var on = Array.prototype.filter.call(own, function (b) { return b.checked; }).length;
      all.checked = own.length > 0 && on === own.length;
      all.indeterminate = on > 0 && on < own.length;
    });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!(t instanceof HTMLInputElement)) return;
    if (t.classList.contains("select-all")) {
      t.closest("table").querySelectorAll('input[name="work_id"]').forEach(function (b) { b.checked = t.checked; });
    }
    if (t.classList.contains("select-all") || t.name === "work_id") updateBulk();
  });

  /* ---- confirmations ------------------------------------------------------------------ */

  function confirmText(form, submitter) {
    var text = (submitter && submitter.dataset.confirm) || form.dataset.confirm || "";
    var engine = form.querySelector('[data-confirm-field="engine"]');
    var name = engine && engine.value ? " of engine " + engine.value : "";
    return text.replace("{n}", String(selectedIds().length)).replace("{engine}", name);
  }

  var dialog = document.getElementById("confirm-dialog");
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var submitter = e.submitter || null;
    if (!(form instanceof HTMLFormElement)) return;
    if (!form.dataset.confirm && !(submitter && submitter.dataset.confirm)) return;
    var confirmed = form.querySelector('input[name="confirmed"]');
    if (!confirmed || confirmed.value === "1") return;
    if (!dialog || typeof dialog.showModal !== "function") return; /* the server asks instead */
    e.preventDefault();
    document.getElementById("confirm-text").textContent = confirmText(form, submitter);
    dialog.returnValue = "";
    dialog.onclose = function () {
      if (dialog.returnValue !== "ok") return;
      confirmed.value = "1";
      if (form.requestSubmit) form.requestSubmit(submitter || undefined);
      else form.submit();
      confirmed.value = "";  /* the form data is taken: back in history it asks again */
    };
    dialog.showModal();
    var ok = document.getElementById("confirm-ok");
    if (ok) ok.focus();
  });

  /* ---- overview ---------------------------------------------------------------------- */

  function startOverview(refreshRegions) {
    var list = document.getElementById("recent-events");
    var params = {};
    if (body.dataset.after) params.after = body.dataset.after;
    follow(params, function (ev) { prependEvent(list, ev, true); refreshRegions(); }, refreshRegions, 5000);
    setInterval(refreshRegions, 15000);
  }

  /* ---- lists (work, failed) ------------------------------------------------------------ */

  function startList(refreshRegions) {
    if (!document.querySelector("[data-live]")) return;
    follow({}, function () { refreshRegions(); }, refreshRegions, 5000);
    setInterval(refreshRegions, 30000);
  }

  /* ---- work detail ------------------------------------------------------------------- */

  /* An error is history once a step was saved after it: the oldest such event in the
   * item's list (newest first) says which. */
  function markErrorPast(meta) {
    var card = document.getElementById("last-error");
    if (!card || !meta.last_error) return;
    var ts = meta.last_error.ts;
    var saved = null;
    document.querySelectorAll("#item-events li.ev").forEach(function (li) {
      if (SAVES.indexOf(li.dataset.type) >= 0 && parseFloat(li.dataset.ts) > ts) saved = li;
    });
    var past = saved !== null || meta.state === "done";
    card.classList.toggle("past", past);
    setField("err-title", past ? "Earlier error" : "Last error");
    var note = document.getElementById("err-past");
    if (!note) return;
    note.hidden = !past;
    var text = saved ? saved.querySelector(".ev-text") : null;
    note.textContent = "A later attempt succeeded" + (text ? " (" + text.textContent + ")" : "") +
      ": this error is history.";
  }

  function renderDetail(status) {
    var meta = status.meta;
    setField("state", badge(meta.state));
    setField("state2", badge(meta.state));
    setField("step", meta.step || "—");
    setField("step2", meta.step || "—");
    setField("version", String(meta.version));
    setField("version2", String(meta.version));
    setField("attempts", meta.attempts + " of " + meta.max_attempts);
    var lease;
    if (meta.lease) {
      lease = el("span", null, meta.lease.worker_id + " · epoch " + meta.lease.epoch + " · expires ", when(meta.lease.expires_at));
    } else {
      lease = el("span", { cls: "muted", text: "none" });
    }
    setField("lease", lease);
    var prog = el("span", { text: "—" });
    if (meta.progress) {
      prog = el("span");
      if (meta.progress.fraction !== null && meta.progress.fraction !== undefined) {
        prog.appendChild(el("progress", { max: "1", value: meta.progress.fraction }));
        prog.appendChild(document.createTextNode(" " + Math.round(meta.progress.fraction * 100) + "% "));
      }
      prog.appendChild(document.createTextNode(meta.progress.message || ""));
    }
    setField("progress", prog);
    setField("updated", when(meta.updated_at, true));
    setField("finished", when(meta.finished_at, true));
    setField("due", when(meta.due_at, true));
    document.querySelectorAll('[data-f="cancel_requested"]').forEach(function (n) { n.hidden = !meta.cancel_requested; });

    var errCard = document.getElementById("last-error");
    if (errCard) {
      errCard.hidden = !meta.last_error;
      if (meta.last_error) {
        setField("err-type", meta.last_error.type);
        setField("err-message", meta.last_error.message);
        setField("err-attempt", String(meta.last_error.attempt));
        setField("err-when", when(meta.last_error.ts, true));
        setField("err-tb", meta.last_error.traceback || "");
        markErrorPast(meta);
      }
    }
    /* No live worker runs the item's engine: the notice says how many items wait for one. */
    var unserved = document.getElementById("item-unserved");
    if (unserved) {
      var waiting = 0;
      Object.keys(status.unserved || {}).forEach(function (q) { waiting += status.unserved[q][meta.engine] || 0; });
      unserved.hidden = waiting === 0;
      if (waiting) setField("unserved-n", String(waiting));
    }
    document.querySelectorAll("form.action[data-states]").forEach(function (f) {
      var states = f.dataset.states;
      if (states) f.hidden = states.split(" ").indexOf(meta.state) < 0;
    });

    var snap = status.snapshot;
    var treeBox = document.getElementById("snapshot-tree");
    if (snap && treeBox && String(snap.version) !== treeBox.dataset.version) {
      treeBox.dataset.version = String(snap.version);
      if (!treeBox.classList.contains("tree")) { treeBox.className = "tree"; treeBox.replaceChildren(); }
      rebuildTree(treeBox, snap.data);
      setField("snap-version", "v" + snap.version);
      setField("snap-step", snap.step);
      setField("snap-finished", snap.is_finished ? "finished" : "not finished");
      renderArtifacts(snap.artifacts || [], meta.work_id);
      refreshVersions(meta.work_id);
    }
    refreshTimes();
  }

  function refreshVersions(workId) {
    getJSON("/api/versions/" + pathId(workId)).then(function (r) {
      var versions = r.versions || [];
      if (!versions.length) return;
      var select = document.getElementById("replay-version");
      if (select) {
        var chosen = select.value;
        var opts = [el("option", { value: "latest", text: "latest snapshot (v" + versions[0].version + ")" })];
        versions.slice(1).forEach(function (v) {
          opts.push(el("option", { value: String(v.version), text: "v" + v.version + " (" + v.step + ")" }));
        });
        opts.push(el("option", { value: "0", text: "scratch (init_snapshot again)" }));
        select.replaceChildren.apply(select, opts);
        if (Array.prototype.some.call(select.options, function (o) { return o.value === chosen; })) select.value = chosen;
      }
      var box = document.getElementById("versions-box");
      var older = versions.slice(1);
      if (!box || !older.length) return;
      var items = older.map(function (v) {
        var summary = "v" + v.version + " · step " + v.step + (v.is_finished ? " · finished" : "");
        var treeBox = el("div", { cls: "tree" });
        rebuildTree(treeBox, v.data);
        return el("li", null, el("details", null, el("summary", { text: summary }), treeBox));
      });
      var list = el("ol", { cls: "versions" });
      list.replaceChildren.apply(list, items);
      box.replaceChildren(list);
    }).catch(function () { /* the next update tries again */ });
  }

  function renderArtifacts(arts, workId) {
    var tbody = document.getElementById("artifacts-body");
    if (!tbody || String(arts.length) === tbody.dataset.count) return;
    tbody.dataset.count = String(arts.length);
    var rows = arts.map(function (a) {
      var kind = encodeURIComponent(a.kind);
      var meta = a.metadata && Object.keys(a.metadata).length ? JSON.stringify(a.metadata) : "";
      if (meta.length > 80) meta = meta.slice(0, 77) + "...";
      return el("tr", null,
        el("td", null, el("code", { text: a.kind })),
        el("td", { cls: "num", text: filesize(a.size) }),
        el("td", { cls: "mono small", title: a.artifact_id, text: a.artifact_id.slice(0, 12) + "…" }),
        el("td", { cls: "opt small", text: meta }),
        el("td", { cls: "links" },
          el("a", { href: "/artifacts/" + a.artifact_id + "?kind=" + kind + "&work=" + encodeURIComponent(workId), text: "view" }),
          " ",
          el("a", { href: "/artifacts/" + a.artifact_id + "/raw?kind=" + kind + "&download=1", text: "download" })));
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  /* The page rendered before the item's events were read: read them now, and put them
   * after any that already arrived on the live stream. */
  function loadPendingEvents(list, workId, then) {
    var url = "/api/events?work_id=" + encodeURIComponent(workId) + "&limit=" + list.dataset.pending;
    getJSON(url).then(function (r) {
      var placeholder = list.querySelector("li.empty");
      var events = (r.events || []).slice().reverse();
      events.forEach(function (ev) {
        if (list.querySelector('li[data-id="' + CSS.escape(ev.id) + '"]')) return;
        var li = eventItem(ev, false);
        li.classList.remove("fresh");
        list.appendChild(li);
      });
      if (placeholder) {
        if (events.length || list.querySelector("li.ev")) placeholder.remove();
        else placeholder.textContent = "No events for this item (they may have been trimmed from the stream).";
      }
      delete list.dataset.pending;
      then();
    }).catch(function () {
      var placeholder = list.querySelector("li.empty");
      if (placeholder) placeholder.textContent = "Could not load this item's events; reload the page to try again.";
    });
  }

  function startDetail(refreshRegions) {
    var workId = body.dataset.work;
    var refresh = throttle(function () {
      return getJSON("/api/work/" + pathId(workId)).then(renderDetail);
    }, 500);
    var list = document.getElementById("item-events");
    var params = { work_id: workId };
    if (body.dataset.after) params.after = body.dataset.after;
    if (list && list.dataset.pending) loadPendingEvents(list, workId, refresh);
    follow(params, function (ev) { prependEvent(list, ev, false); refresh(); refreshRegions(); },
      function () { refresh(); refreshRegions(); }, 3000);
  }

  /* ---- events page ------------------------------------------------------------------- */

  function startEvents() {
    var list = document.getElementById("all-events");
    if (!list) return;
    var types = list.dataset.types ? list.dataset.types.split(" ") : null;
    var work = list.dataset.work || "";
    var params = {};
    if (body.dataset.after) params.after = body.dataset.after;
    if (work) params.work_id = work;
    follow(params, function (ev) {
      if (types && types.indexOf(ev.type) < 0) return;
      prependEvent(list, ev, !work);
    }, function () { /* nothing to refetch */ }, 5000);
  }

  /* ---- start ------------------------------------------------------------------------- */

  refreshTimes();
  updateBulk();
  setInterval(function () { refreshTimes(); }, 5000);
  var refreshRegions = liveRegions();
  if (page === "overview") startOverview(refreshRegions);
  else if (page === "work" && body.dataset.work) startDetail(refreshRegions);
  else if (page === "work" || page === "failed") startList(refreshRegions);
  else if (page === "events") startEvents();
})();
