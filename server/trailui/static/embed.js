// <trail-viewer src="https://trail.example/viewer/?token=…"></trail-viewer>
//
// Embeds Trail's tenant-facing viewer in an iframe that is as tall as the
// viewer's page (the viewer posts its height). Load it from the Trail
// server: <script src="https://trail.example/viewer/static/embed.js" defer>.
// Trail answers with a Content-Security-Policy frame-ancestors of the
// origins configured for the token's tenant: another origin sees the
// browser's refusal instead of the viewer.
(function () {
  "use strict";
  if (!window.customElements || window.customElements.get("trail-viewer")) return;

  class TrailViewer extends HTMLElement {
    connectedCallback() {
      if (this.frame) return;
      var src = this.getAttribute("src");
      if (!src) return;
      var origin;
      try { origin = new URL(src, location.href).origin; } catch (e) { return; }
      var self = this;
      var f = document.createElement("iframe");
      f.src = src;
      f.title = this.getAttribute("title") || "Audit log";
      f.setAttribute("referrerpolicy", "no-referrer");
      f.style.width = "100%";
      f.style.border = "0";
      f.style.display = "block";
      f.style.height = (parseInt(this.getAttribute("min-height"), 10) || 400) + "px";
      this.frame = f;
      this.onMessage = function (e) {
        if (e.source !== f.contentWindow || e.origin !== origin) return;
        var d = e.data;
        if (!d || d.type !== "trail-viewer:height" || typeof d.height !== "number") return;
        f.style.height = Math.max(100, Math.min(d.height, 100000)) + "px";
        self.setAttribute("data-state", "ready");
        self.dispatchEvent(new CustomEvent("trail-viewer-resize", { detail: { height: d.height } }));
      };
      window.addEventListener("message", this.onMessage);
      this.appendChild(f);
    }

    disconnectedCallback() {
      if (this.onMessage) window.removeEventListener("message", this.onMessage);
    }
  }

  window.customElements.define("trail-viewer", TrailViewer);
})();
