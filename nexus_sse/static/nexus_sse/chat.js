// nexus_sse chat page. Streams replies with fetch + ReadableStream, resumes dropped connections with
// Last-Event-ID, stops runs on the server. Every piece of text goes into the page with textContent:
// neither the user's nor the model's text is ever parsed as HTML.
(function () {
  "use strict";

  var root = document.getElementById("nexus-chat");
  if (!root) { return; }
  var urls = root.dataset;
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var sendButton = document.getElementById("chat-send");
  var stopButton = document.getElementById("chat-stop");
  var statusLine = document.getElementById("chat-status");
  var progressBar = document.querySelector("#chat-progress div");
  var picker = document.getElementById("chat-workflow");
  var demoNote = document.getElementById("chat-demo");
  var nodeList = document.getElementById("chat-nodes");

  var MAX_RECONNECTS = 8;
  var MAX_DELAY = 15000;
  var history = [];   // completed exchanges: [{role, content}, ...]
  var current = null; // the reply being streamed

  var MESSAGES = {
    ValidationError: "The request was not accepted",
    AuthenticationError: "Please log in to use this chat",
    PermissionDenied: "You are not allowed to use this chat",
    NotFound: "This chat workflow is not available",
    RateLimitError: "Too many requests, please wait a moment",
    TimeoutError: "The reply took too long",
    NodeError: "The assistant failed",
    InternalError: "Something went wrong on the server"
  };

  function workflow() { return picker ? picker.value : null; }

  function showDemoNote() {
    if (!picker || !demoNote) { return; }
    var option = picker.tagName === "SELECT" ? picker.options[picker.selectedIndex] : picker;
    demoNote.hidden = !(option && option.dataset.demo === "1");
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function setProgress(percent) {
    progressBar.style.width = Math.max(0, Math.min(100, percent)) + "%";
  }

  function addMessage(role, text) {
    var row = document.createElement("div");
    row.className = "message " + role;
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    row.appendChild(bubble);
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    return row;
  }

  // One line per workflow node: its name and where it is (started, 40 %, completed, failed).
  function showNode(data) {
    if (!nodeList || !data.node) { return; }
    var item = null;
    Array.prototype.forEach.call(nodeList.children, function (li) {
      if (li.dataset.node === data.node) { item = li; }
    });
    if (!item) {
      item = document.createElement("li");
      item.dataset.node = data.node;
      var name = document.createElement("span");
      name.className = "node-name";
      name.textContent = data.node;
      var badge = document.createElement("span");
      badge.className = "node-state";
      item.append(name, " ", badge);
      nodeList.appendChild(item);
    }
    var state = data.status;
    if (typeof data.node_percent === "number" && data.status !== "completed") {
      state = Math.round(data.node_percent) + " %";
    }
    item.dataset.status = data.status;
    item.querySelector(".node-state").textContent = state + (data.message ? " — " + data.message : "");
  }

  // A run that ended early: the steps still under way say how it ended (a finished run says
  // "completed" per step from the server's own progress events; it sends none for these ends).
  function endNodes(state) {
    if (!nodeList) { return; }
    Array.prototype.forEach.call(nodeList.children, function (li) {
      if (li.dataset.status === "completed") { return; }
      li.dataset.status = state;
      li.querySelector(".node-state").textContent = state;
    });
  }

  // Under the finished reply: who answered and, when known, how many tokens it took.
  function addMeta(row, metadata) {
    if (!metadata || typeof metadata !== "object") { return; }
    var parts = [];
    if (metadata.provider === "offline") {
      parts.push("offline demo provider");  // it uses no model: naming the configured one would mislead
    } else {
      if (metadata.provider) { parts.push(String(metadata.provider)); }
      if (metadata.model) { parts.push(String(metadata.model)); }
    }
    if (metadata.usage && typeof metadata.usage.total_tokens === "number") {
      parts.push(metadata.usage.total_tokens + " tokens");
    }
    if (!parts.length) { return; }
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = parts.join(" · ");
    row.appendChild(meta);
  }

  function addNote(row, text) {
    var note = document.createElement("span");
    note.className = "note";
    note.textContent = text;
    row.querySelector(".bubble").appendChild(note);
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var field = form.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function url(template, name, value) { return template.replace(name, encodeURIComponent(value)); }

  function busy(on) {
    input.disabled = on;
    sendButton.disabled = on;
    stopButton.disabled = !on;
    if (picker && picker.tagName === "SELECT") { picker.disabled = on; }
    if (on) { stopButton.focus(); } else { input.focus(); }
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // Read an SSE body; call onEvent(type, data, id, retry) per event. Resolves when the body ends.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var event = {data: []};
    function line(text) {
      if (text === "") {
        if (event.data.length || event.retry) {
          onEvent(event.event || "message", event.data.join("\n"), event.id, event.retry);
        }
        event = {data: []};
        return;
      }
      if (text.charAt(0) === ":") { return; }  // keepalive comment
      var colon = text.indexOf(":");
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
      if (field === "data") { event.data.push(value); }
      else if (field === "event") { event.event = value; }
      else if (field === "id") { event.id = value; }
      else if (field === "retry" && /^\d+$/.test(value)) { event.retry = parseInt(value, 10); }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer) { line(buffer); }
          return;
        }
        buffer += decoder.decode(chunk.value, {stream: true});
        var parts = buffer.split(/\r\n|\n|\r(?!$)/);
        buffer = parts.pop();
        parts.forEach(line);
        return pump();
      });
    }
    return pump();
  }

  function handle(type, raw, id, retry) {
    var reply = current;
    if (retry) { reply.retry = retry; }
    if (!raw) { return; }
    if (id) {
      var seq = parseInt(id.slice(id.lastIndexOf(":") + 1), 10);
      if (seq <= reply.lastSeq) { return; }  // already shown (a replay after reconnecting)
      reply.lastSeq = seq;
      reply.runId = id.slice(0, id.lastIndexOf(":"));
    }
    var data;
    try { data = JSON.parse(raw); } catch (err) { return; }
    if (type === "start") {
      setStatus("Thinking…");
    } else if (type === "progress") {
      setProgress(data.percent);
      showNode(data);
      setStatus(data.node + ": " + data.status + (data.message ? " — " + data.message : "") +
                " (" + Math.round(data.percent) + "%)");
    } else if (type === "token") {
      reply.text += data.delta;
      reply.bubble.textContent = reply.text;
      log.scrollTop = log.scrollHeight;
      setStatus("Replying…");
    } else if (type === "complete") {
      var result = data.result || {};
      var text = typeof result.response === "string" ? result.response : JSON.stringify(result);
      reply.text = text;
      reply.bubble.textContent = text;
      reply.done = true;
      addMeta(reply.row, result.metadata);
      history.push({role: "user", content: reply.prompt}, {role: "assistant", content: text});
      setProgress(100);
      setStatus("Done");
    } else if (type === "error") {
      reply.done = true;
      if (data.error_type === "CancelledError") {
        endNodes("stopped");
        addNote(reply.row, "Stopped.");
        setStatus("Stopped");
      } else {
        endNodes("failed");
        reply.row.classList.add("error");
        addNote(reply.row, (MESSAGES[data.error_type] || "Error") + ": " + data.error);
        setStatus(MESSAGES[data.error_type] || "Error", true);
      }
    }
  }

  function httpError(response, reply) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var message = (MESSAGES[body.error_type] || ("HTTP " + response.status)) + (body.error ? ": " + body.error : "");
      if (response.status === 429 && response.headers.get("Retry-After")) {
        message += " (retry in " + response.headers.get("Retry-After") + " s)";
      }
      reply.row.classList.add("error");
      reply.bubble.textContent = message;
      reply.done = true;
      setStatus(message, true);
    });
  }

  function consume(response) {
    return readEvents(response, handle).catch(function () { /* dropped: the caller reconnects */ });
  }

  // The stream ended without complete/error: the connection dropped. Re-attach to the same run.
  function resume(reply, attempt) {
    if (reply.done) { return Promise.resolve(); }
    if (!reply.runId || attempt >= MAX_RECONNECTS) {
      reply.row.classList.add("error");
      addNote(reply.row, "Connection lost.");
      setStatus("Connection lost", true);
      return Promise.resolve();
    }
    var delay = Math.min(reply.retry * Math.pow(2, attempt), MAX_DELAY) * (0.5 + Math.random());
    setStatus("Connection lost; reconnecting…");
    return sleep(delay).then(function () {
      return fetch(url(urls.eventsUrl, "__run__", reply.runId), {
        headers: {"Accept": "text/event-stream", "Last-Event-ID": reply.runId + ":" + reply.lastSeq},
        credentials: "same-origin"
      });
    }).then(function (response) {
      if (response.status === 204) { return finishFromStatus(reply); }
      if (!response.ok) { return httpError(response, reply); }
      var before = reply.lastSeq;
      // a connection that brought nothing new counts as a failed attempt (no endless fast loop)
      return consume(response).then(function () { return resume(reply, reply.lastSeq > before ? 0 : attempt + 1); });
    }, function () {
      return resume(reply, attempt + 1);  // still offline
    });
  }

  // Nothing left to stream (204): the run ended while we were away; read its result.
  function finishFromStatus(reply) {
    return fetch(url(urls.statusUrl, "__run__", reply.runId), {credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (run) {
        if (run.status === "completed") {
          handle("complete", JSON.stringify({result: run.result}), null, null);
        } else {
          handle("error", JSON.stringify({error: run.error || run.status, error_type: run.error_type || "InternalError"}),
                 null, null);
        }
      });
  }

  function send(text) {
    addMessage("user", text);
    var row = addMessage("assistant streaming", "");
    current = {prompt: text, row: row, bubble: row.querySelector(".bubble"), text: "", lastSeq: 0, runId: null,
               retry: 3000, done: false, stopAsked: false};
    var reply = current;
    if (nodeList) { nodeList.textContent = ""; }
    busy(true);
    setProgress(0);
    setStatus("Sending…");
    return fetch(url(urls.executeUrl, "__workflow__", workflow()), {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRFToken": csrfToken()},
      credentials: "same-origin",
      body: JSON.stringify({inputs: {message: text, messages: history.slice()}})
    }).then(function (response) {
      if (!response.ok) { return httpError(response, reply); }
      reply.runId = response.headers.get("X-Run-Id");
      if (reply.stopAsked) { cancel(reply); }  // Stop was pressed before the run had an id
      return consume(response).then(function () { return resume(reply, 0); });
    }, function () {
      reply.row.classList.add("error");
      addNote(reply.row, "Could not reach the server.");
      setStatus("Could not reach the server", true);
    }).catch(function (err) {
      setStatus("Error: " + err.message, true);
    }).then(function () {
      row.classList.remove("streaming");
      busy(false);
    });
  }

  function cancel(reply) {
    fetch(url(urls.cancelUrl, "__run__", reply.runId), {
      method: "POST", headers: {"X-CSRFToken": csrfToken()}, credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok && !reply.done) { setStatus("The server refused to stop this reply", true); }
    }, function () {
      if (!reply.done) { setStatus("Could not reach the server to stop; still trying to follow the reply", true); }
    });
  }

  function stop() {
    var reply = current;
    if (!reply || reply.done || reply.stopAsked) { return; }
    reply.stopAsked = true;
    stopButton.disabled = true;
    setStatus("Stopping…");
    if (reply.runId) { cancel(reply); }
  }

  stopButton.addEventListener("click", stop);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { stop(); }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || sendButton.disabled) { return; }
    input.value = "";
    send(text);
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  if (picker && picker.tagName === "SELECT") {
    picker.addEventListener("change", function () {
      history = [];
      log.textContent = "";
      showDemoNote();
      setStatus("Ready");
    });
  }
  showDemoNote();
  input.focus();
})();
