// Live dashboard: connection indicator, reconnects, and htmx settings for the retry buttons.
(function () {
  // A refused retry answers 409 with a message worth showing; swap it like a success.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "40[39]", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
  // Reconnect quickly at first, then back off to at most 10 s (with jitter).
  htmx.config.wsReconnectDelay = function (retryCount) {
    var ceiling = Math.min(500 * Math.pow(2, retryCount), 10000);
    return ceiling / 2 + Math.random() * ceiling / 2;
  };

  var indicator = document.getElementById("connection");
  var live = document.getElementById("live");
  function show(state, text) {
    indicator.className = "conn conn-" + state;
    indicator.textContent = text;
    document.body.dataset.connection = state;
  }
  live.addEventListener("htmx:wsConnecting", function () { show("connecting", "connecting…"); });
  live.addEventListener("htmx:wsOpen", function () { show("live", "live"); });
  live.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail.event.code;
    if (code === 4403) { show("down", "no access — sign in again"); return; }
    show("down", "disconnected — reconnecting…");
    // The extension itself retries only after abnormal closes; retry after a clean one too
    // (a server restart closes with 1001 "going away").
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0) {
      setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, htmx.config.wsReconnectDelay(1));
    }
  });
  live.addEventListener("htmx:wsAfterMessage", function () {
    document.body.dataset.updated = new Date().toISOString();
  });
})();
