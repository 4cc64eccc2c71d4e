// Weir console: the message browser's live tail (Server-Sent Events). Records are written
// with textContent only, so nothing in a record becomes markup; at most 500 rows are kept.
(function () {
  var box = document.getElementById("tail-box");
  if (!box) { return; }
  var start = document.getElementById("tail-start");
  var stop = document.getElementById("tail-stop");
  var status = document.getElementById("tail-status");
  var body = document.querySelector("#tail tbody");
  var skips = document.createElement("ul");
  skips.id = "tail-skips";
  box.appendChild(skips);
  var es = null;
  var shown = 0;
  function utc(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 19); }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    tr.appendChild(td);
  }
  function close(why) {
    if (es) { es.close(); es = null; }
    start.disabled = false; stop.disabled = true;
    status.textContent = " " + why;
  }
  start.addEventListener("click", function () {
    if (es) { return; }
    es = new EventSource(box.getAttribute("data-src"));
    start.disabled = true; stop.disabled = false;
    status.textContent = " connecting";
    es.addEventListener("start", function (e) {
      var at = JSON.parse(e.data).map(function (p) { return p[0] + ":" + p[1]; });
      status.textContent = " tailing from " + at.join(", ");
      box.setAttribute("data-started", "true");
    });
    es.addEventListener("records", function (e) {
      var msgs = JSON.parse(e.data);
      for (var i = 0; i < msgs.length; i++) {
        var m = msgs[i];
        var tr = document.createElement("tr");
        cell(tr, String(m.partition), "num");
        cell(tr, String(m.offset), "num");
        cell(tr, utc(m.timestamp_ms));
        cell(tr, m.key === null ? "(null)" : m.key, "key");
        cell(tr, m.headers.map(function (h) { return h[0] + "=" + (h[1] === null ? "(null)" : h[1]); }).join(", "));
        cell(tr, m.value === null ? "(null)" : m.value);
        body.insertBefore(tr, body.firstChild);
        shown++;
      }
      while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
      status.textContent = " " + shown + " records so far";
    });
    es.addEventListener("skipped", function (e) {
      JSON.parse(e.data).forEach(function (s) {
        var li = document.createElement("li");
        li.textContent = "skipped offsets " + s.from + " to " + (s.to - 1) + " of partition " +
          s.partition + ": this page fell behind";
        skips.appendChild(li);
      });
    });
    es.addEventListener("error", function (e) {
      if (e.data) { close("stopped: " + JSON.parse(e.data)); }
      else if (es && es.readyState === EventSource.CLOSED) { close("disconnected"); }
    });
  });
  stop.addEventListener("click", function () { close("stopped"); });
  window.addEventListener("pagehide", function () { if (es) { es.close(); } });
})();
