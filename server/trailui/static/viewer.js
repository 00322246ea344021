// Trail's tenant-facing viewer: local times, and the page's height for the
// embedding page (embed.js), which sizes its iframe to it. The height is
// all it tells the parent: no event data leaves the frame.
(function () {
  "use strict";
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
  } catch (e) { fmt = null; }

  function localize() {
    if (!fmt) return;
    var ts = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < ts.length; i++) {
      var d = new Date(ts[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) ts[i].textContent = fmt.format(d);
    }
  }

  var last = -1;
  function report() {
    if (window.parent === window) return;
    var h = Math.ceil(document.documentElement.scrollHeight);
    if (h === last) return;
    last = h;
    window.parent.postMessage({ type: "trail-viewer:height", height: h }, "*");
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize();
    report();
    if (window.ResizeObserver) new ResizeObserver(report).observe(document.documentElement);
    window.addEventListener("load", report);
  });
})();
