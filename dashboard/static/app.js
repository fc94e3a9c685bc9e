// refline dashboard: live pages over server-sent events, no build step.
// A run page appends its log as the run prints; every other page fetches
// itself again when its repository changes and swaps in the new <main>.
(function () {
  "use strict";

  // Line numbers are drawn from the anchor's data-n (CSS), so that copying
  // a log copies only the log.
  function number(span) {
    var a = span.firstChild;
    if (a && a.tagName === "A" && !a.dataset.n) a.dataset.n = span.id.slice(1);
  }

  function runPage(log) {
    Array.prototype.forEach.call(log.querySelectorAll(".ln"), number);
    var follow = document.getElementById("follow");
    var lines = parseInt(log.dataset.lines, 10) || 0;
    // A last line without its newline is completed by the stream.
    var open = log.lastElementChild && log.textContent.slice(-1) !== "\n" ? log.lastElementChild : null;
    if (log.dataset.ended === "true") return;
    var es = new EventSource(log.dataset.events);

    function addText(text) {
      var atEnd = follow && follow.checked;
      var parts = text.split("\n");
      parts.forEach(function (part, i) {
        var last = i === parts.length - 1;
        if (open) {
          open.appendChild(document.createTextNode(part));
          if (!last) { log.appendChild(document.createTextNode("\n")); open = null; }
          return;
        }
        if (last && part === "") return;
        lines++;
        var span = document.createElement("span");
        span.className = "ln";
        span.id = "L" + lines;
        var a = document.createElement("a");
        a.href = "#L" + lines;
        span.appendChild(a);
        if (part.indexOf("--- ") === 0) {
          var b = document.createElement("b");
          b.textContent = part;
          span.appendChild(b);
        } else {
          span.appendChild(document.createTextNode(part));
        }
        number(span);
        log.appendChild(span);
        if (last) { open = span; } else { log.appendChild(document.createTextNode("\n")); }
      });
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    }

    function dur(ms) {
      if (!ms || ms <= 0) return "-";
      if (ms < 1000) return ms + "ms";
      if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
      var m = Math.floor(ms / 60000), s = Math.floor(ms / 1000) % 60;
      return m + "m" + (s < 10 ? "0" : "") + s + "s";
    }

    function showState(p) {
      var st = document.getElementById("run-state");
      if (st) { st.textContent = p.run.state; st.className = "state " + p.run.state; }
      var tbody = document.querySelector("#stages tbody");
      if (!tbody) return;
      tbody.textContent = "";
      (p.stages || []).forEach(function (s) {
        var tr = document.createElement("tr");
        var name = document.createElement("td");
        name.textContent = s.name;
        var state = document.createElement("td");
        var badge = document.createElement("span");
        badge.className = "state " + s.state;
        badge.textContent = s.state;
        state.appendChild(badge);
        if (s.exit_code) state.appendChild(document.createTextNode(" (exit " + s.exit_code + ")"));
        var took = document.createElement("td");
        took.textContent = dur(s.duration_ms);
        tr.appendChild(name); tr.appendChild(state); tr.appendChild(took);
        tbody.appendChild(tr);
      });
    }

    es.addEventListener("log", function (e) { addText(JSON.parse(e.data).text); });
    es.addEventListener("state", function (e) { showState(JSON.parse(e.data)); });
    es.addEventListener("end", function (e) {
      es.close();
      var d = JSON.parse(e.data);
      var st = document.getElementById("run-state");
      if (st) { st.textContent = d.state; st.className = "state " + d.state; }
      document.body.dataset.ended = "true";
    });
  }

  function livePage(url) {
    var es = new EventSource(url);
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.querySelector("main"), main = document.querySelector("main");
            if (fresh && main) main.innerHTML = fresh.innerHTML;
          }
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          document.body.dataset.refreshed = String((parseInt(document.body.dataset.refreshed, 10) || 0) + 1);
          if (again) { again = false; refresh(); }
        });
    }
    es.addEventListener("changed", refresh);
  }

  var log = document.getElementById("log");
  if (log) {
    runPage(log);
  } else if (document.body.dataset.live) {
    livePage(document.body.dataset.live);
  }
})();
