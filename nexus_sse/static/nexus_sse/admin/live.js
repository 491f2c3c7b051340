// nexus_sse admin: the "Try it" form and live run pages. Text only (textContent), no inline script.
(function () {
  "use strict";

  function append(out, line) {
    out.textContent += line + "\n";
    out.scrollTop = out.scrollHeight;
  }

  function describe(type, data) {
    return type + " " + JSON.stringify(data);
  }

  // A live run page: follow the run's events with EventSource (it resumes by itself).
  var live = document.getElementById("nexus-live");
  if (live) {
    var out = document.getElementById("nexus-events");
    var source = new EventSource(live.dataset.eventsUrl);
    ["start", "progress", "token", "complete", "error"].forEach(function (type) {
      source.addEventListener(type, function (event) {
        if (!event.data) { return; }  // a connection error, not a server event
        append(out, describe(type, JSON.parse(event.data)));
        if (type === "complete" || type === "error") {
          source.close();
          window.setTimeout(function () { window.location.reload(); }, 500);
        }
      });
    });
  }

  // The "Try it" form: POST the inputs, read the stream with fetch.
  var form = document.getElementById("nexus-try");
  if (!form) { return; }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var out = document.getElementById("nexus-events");
    out.textContent = "";
    var inputs = {};
    try {
      form.querySelectorAll("[data-type]").forEach(function (el) {
        var type = el.dataset.type;
        if (type === "boolean") { inputs[el.name] = el.checked; return; }
        if (el.value === "") { return; }
        if (type === "integer") { inputs[el.name] = parseInt(el.value, 10); }
        else if (type === "number") { inputs[el.name] = parseFloat(el.value); }
        else if (type === "object" || type === "array") { inputs[el.name] = JSON.parse(el.value); }
        else { inputs[el.name] = el.value; }
      });
    } catch (err) {
      append(out, "Invalid JSON in a field: " + err.message);
      return;
    }
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
    fetch(form.dataset.executeUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRFToken": csrf},
      credentials: "same-origin",
      body: JSON.stringify({inputs: inputs})
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) { append(out, "HTTP " + response.status + ": " + body.error); });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var current = {};
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { return; }
          buffer += decoder.decode(chunk.value, {stream: true});
          var lines = buffer.split("\n");
          buffer = lines.pop();
          lines.forEach(function (line) {
            if (line === "") {
              if (current.data) { append(out, describe(current.event || "message", JSON.parse(current.data))); }
              current = {};
            } else if (line.charAt(0) !== ":") {
              var i = line.indexOf(":");
              var field = i < 0 ? line : line.slice(0, i);
              var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              current[field] = field === "data" && current.data ? current.data + "\n" + value : value;
            }
          });
          return pump();
        });
      }
      return pump();
    }).catch(function (err) { append(out, "Connection error: " + err.message); });
  });
})();
