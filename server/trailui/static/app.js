// Trail admin UI: the little JavaScript it has. Everything here is optional:
// the event list, detail and history pages work without it.
(function () {
  "use strict";

  // One clock (issue 15): the server shows every time in the zone named
  // in the header (body data-tz) and reads typed times in it. That zone is
  // the browser's unless the viewer chose UTC; this script tells the server
  // the browser's zone in a cookie, and reloads once when the page was
  // rendered for another zone (the first visit, or after travelling).
  function cookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function hasCookie(name, value) {
    return document.cookie.split("; ").indexOf(name + "=" + encodeURIComponent(value)) >= 0;
  }
  var browserZone = "UTC";
  try { browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* UTC */ }
  var pageZone = document.body ? document.body.getAttribute("data-tz") || "UTC" : "UTC";
  if (!hasCookie("trail_browser_tz", browserZone)) {
    cookie("trail_browser_tz", browserZone);
    var utcChosen = hasCookie("trail_tz", "utc");
    var tried = null;
    try { tried = sessionStorage.getItem("trail-tz-reload"); } catch (e) { tried = browserZone; }
    if (!utcChosen && pageZone !== browserZone && tried !== browserZone && hasCookie("trail_browser_tz", browserZone)) {
      try { sessionStorage.setItem("trail-tz-reload", browserZone); } catch (e) { /* no reload loop */ }
      location.reload();
    }
  }

  var fmt;
  try {
    fmt = new Intl.DateTimeFormat("en-CA", {
      timeZone: pageZone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
  } catch (e) { fmt = null; }

  // localize shows the times the live tail adds in the page's zone, as the
  // server shows the others ("2026-12-02 17:04:05 PST").
  function localize(root) {
    if (!fmt) return;
    var ts = (root || document).querySelectorAll("time[datetime][data-js]");
    for (var i = 0; i < ts.length; i++) {
      var d = new Date(ts[i].getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var p = {};
      fmt.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
      ts[i].textContent = p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + " " + (p.timeZoneName || pageZone);
      ts[i].removeAttribute("data-js");
    }
  }

  // The zone switch posts to the server, which keeps the choice and sends
  // the browser back to this page with its typed times rewritten into the
  // zone chosen (zone.go). The page's URL is read when the form is sent: a
  // page htmx replaced has a newer URL than the header, which stays.
  function zoneSwitch() {
    var b = document.getElementById("zone-switch");
    if (!b || b.getAttribute("data-ready")) return;
    b.setAttribute("data-ready", "1");
    b.hidden = false;
    b.form.addEventListener("submit", function () {
      b.form.elements.next.value = location.pathname + location.search;
    });
  }

  // "/" jumps to the search field, as on most log viewers.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var f = document.getElementById("f-text") || document.querySelector("form.filters input[type=search], form.filters input");
    if (!f) return;
    e.preventDefault();
    // At phone width the form may be folded (a closed <details>): open it.
    var box = f.closest("details");
    if (box && !box.open) box.open = true;
    f.focus();
    slashFocused = true;
  });
  // A keydown cancelled still lets some input paths (synthetic key events)
  // deliver the "/" as a keypress to the field it just focused: drop it.
  var slashFocused = false;
  document.addEventListener("keypress", function (e) {
    if (slashFocused && e.key === "/") e.preventDefault();
    slashFocused = false;
  }, true);

  var source = null;

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text == null ? "" : String(text);
    tr.appendChild(td);
    return td;
  }

  function link(td, href, text) {
    td.textContent = "";
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  }

  // startTail follows the SSE stream of the live tail page. Rows are built
  // with textContent only: event data is never parsed as HTML.
  function startTail() {
    var table = document.getElementById("tail");
    if (!table || source || !window.EventSource) return;
    var rows = document.getElementById("tail-rows");
    var status = document.getElementById("tail-status");
    var prefix = table.getAttribute("data-prefix");
    source = new EventSource(table.getAttribute("data-stream"));
    source.addEventListener("open", function () { status.textContent = "Following."; });
    source.addEventListener("error", function () {
      // A stream the server refused (429: the key has its most streams open)
      // is closed, and the browser does not retry it.
      status.textContent = source.readyState === EventSource.CLOSED ?
        "The server refused the stream (too many open with this key?); reload to retry." : "Disconnected; retrying…";
      checkSession(prefix, status);
    });
    source.addEventListener("lagged", function () { status.textContent = "Fell behind; reload to resume."; source.close(); });
    source.addEventListener("shutdown", function () { status.textContent = "The server is restarting."; });
    // The server ends the stream of a session or key that has ended (it
    // checks at each keep-alive): no retry, sign in again.
    source.addEventListener("ended", function () { signInAgain(prefix, status); });
    source.addEventListener("event", function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", ev.id);
      var when = cell(tr, "", "when");
      var t = document.createElement("time");
      t.setAttribute("datetime", ev.occurred_at);
      t.setAttribute("data-js", "1");
      t.textContent = ev.occurred_at;
      when.appendChild(t);
      cell(tr, ev.tenant || "platform", "mono");
      var actor = ev.actor ? (ev.actor.id ? ev.actor.type + ":" + ev.actor.id : ev.actor.type) : "";
      link(cell(tr, ""), prefix + "/actors/" + encodeURIComponent(actor) +
        (ev.tenant ? "?tenant=" + encodeURIComponent(ev.tenant) : ""), ev.actor && ev.actor.name ? ev.actor.name : actor);
      cell(tr, ev.action, "mono");
      var target = ev.target && ev.target.type && ev.target.id ? ev.target.type + ":" + ev.target.id : "";
      var ttd = cell(tr, "");
      if (target) {
        link(ttd, prefix + "/objects/" + encodeURIComponent(ev.target.type) + "/" + encodeURIComponent(ev.target.id) +
          (ev.tenant ? "?tenant=" + encodeURIComponent(ev.tenant) : ""), target);
      }
      var otd = cell(tr, "");
      var o = document.createElement("span");
      o.className = "outcome o-" + String(ev.outcome).replace(/[^a-z]/g, "");
      o.textContent = ev.outcome;
      otd.appendChild(o);
      cell(tr, ev.description, "desc");
      link(cell(tr, "", "mono"), prefix + "/events/" + encodeURIComponent(ev.id), String(ev.id).slice(-12));
      rows.insertBefore(tr, rows.firstChild);
      while (rows.children.length > 500) rows.removeChild(rows.lastChild);
      localize(tr);
    });
  }

  // checkSession asks the server whether the session still stands when the
  // stream breaks: an ended one (signed out, expired, key revoked) stops the
  // retries and offers the sign-in page instead of retrying forever.
  var probing = false;
  function checkSession(prefix, status) {
    if (probing || !window.fetch) return;
    probing = true;
    fetch(prefix + "/session", { credentials: "same-origin", cache: "no-store" }).then(function (resp) {
      probing = false;
      if (resp.status !== 401 || !source) return;
      signInAgain(prefix, status);
    }, function () { probing = false; });
  }

  function signInAgain(prefix, status) {
    if (source) source.close();
    status.textContent = "Your session has ended. ";
    var a = document.createElement("a");
    a.href = prefix + "/login?next=" + encodeURIComponent(location.pathname + location.search);
    a.id = "tail-signin";
    a.textContent = "Sign in again";
    status.appendChild(a);
  }

  function init(root) {
    localize(root);
    zoneSwitch();
    startTail();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();
