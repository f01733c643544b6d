// Live events (docs/domains/events.md). Loaded after htmx and its SSE extension; no inline script (strict CSP).
//
// 1. Region refresh is plain htmx: inside <div hx-ext="sse" sse-connect="/evenements">, an element with
//    hx-get="…" hx-trigger="sse:request.updated" reloads itself when that event arrives.
// 2. Urgent events (payload "urgent": true) show a browser notification and play a short beep (WebAudio, no media
//    file). Permission is asked only from a user gesture: a button marked data-live-notifications.
//    Event types that no element of the page listens to can still notify: list them on the connecting element,
//    <div hx-ext="sse" sse-connect="/evenements" data-live-notify="oncall.page">.
// 3. An element with id "live-annonces" (aria-live="polite") receives a short text for every urgent event, for
//    screen readers and for users who refused notifications.
// 4. Typing is never lost: a region's live refresh is skipped while one of its forms holds input not sent yet (the
//    region is marked data-live-pending, which the stylesheet announces); sending the form reloads the page.
(function () {
  "use strict";

  var LABELS = {
    "request.sent": "Nouvelle demande urgente",
    "request.updated": "Demande urgente mise à jour",
    "request.overdue": "Demande urgente en retard",
    "request.expired": "Demande urgente expirée",
    "oncall.page": "Appel d'astreinte",
    "stroke.transfer": "AVC : patient adressé à votre centre",
  };
  var seen = [];
  var audio = null;

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (error) {
      return null;
    }
  }

  function firstTime(id) {
    if (!id) return true;
    if (seen.indexOf(id) !== -1) return false;
    seen.push(id);
    if (seen.length > 200) seen.shift();
    return true;
  }

  function unlockAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
  }

  function beep() {
    if (!audio || audio.state !== "running") return; // browsers allow sound only after a user gesture
    var start = audio.currentTime;
    [880, 660].forEach(function (frequency, index) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      var at = start + index * 0.22;
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.21);
    });
  }

  function announce(text) {
    var region = document.getElementById("live-annonces");
    if (region) region.textContent = text;
  }

  function notify(payload) {
    var text = (payload.data && typeof payload.data.label === "string" && payload.data.label) ||
      LABELS[payload.type] || "Nouvel évènement urgent";
    announce(text);
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var notification = new Notification("Télésanté — urgent", { body: text, tag: payload.id, lang: "fr" });
    notification.onclick = function () {
      window.focus();
      notification.close();
    };
  }

  function handle(messageEvent) {
    if (!messageEvent || typeof messageEvent.data !== "string") return;
    var payload = parse(messageEvent.data);
    if (!payload || payload.urgent !== true || !firstTime(payload.id || messageEvent.lastEventId)) return;
    notify(payload);
  }

  // Every message that htmx's SSE extension hands to an element of the page.
  document.addEventListener("htmx:sseMessage", function (event) {
    handle(event.detail);
  });

  // Types declared on the connecting element with data-live-notify, listened to directly on its EventSource.
  document.addEventListener("htmx:sseOpen", function (event) {
    var element = event.target;
    var source = event.detail && event.detail.source;
    var types = element && element.getAttribute && element.getAttribute("data-live-notify");
    if (!source || !types || source.__teleSanteLive) return;
    source.__teleSanteLive = true;
    types.split(/\s+/).forEach(function (type) {
      if (type) source.addEventListener(type, handle);
    });
  });

  // Permission and sound need a user gesture: the button asks; any click unlocks the sound.
  function refreshButtons() {
    var buttons = document.querySelectorAll("[data-live-notifications]");
    var needed = "Notification" in window && Notification.permission === "default";
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = !needed;
  }

  document.addEventListener("click", function (event) {
    unlockAudio();
    var target = event.target;
    var button = target && target.closest && target.closest("[data-live-notifications]");
    if (button && "Notification" in window) {
      Notification.requestPermission().then(refreshButtons);
    }
  });
  document.addEventListener("DOMContentLoaded", refreshButtons);
  document.addEventListener("htmx:afterSettle", refreshButtons);

  // 4. Forms being filled in keep their input: live refreshes wait.
  // Only forms that send something (a message, a report): a search or filter form (GET) never holds refreshes.
  function markDirty(event) {
    var form = event.target && event.target.closest && event.target.closest("form");
    if (!form) return;
    var sends = String(form.getAttribute("method") || "").toLowerCase() === "post" || form.hasAttribute("hx-post");
    if (sends) form.setAttribute("data-live-dirty", "");
  }
  document.addEventListener("input", markDirty);
  document.addEventListener("change", markDirty);
  function markSent(event) {
    if (event.target && event.target.removeAttribute) event.target.removeAttribute("data-live-dirty");
  }
  document.addEventListener("submit", markSent, true); // sent (a page load, or htmx): refreshes resume
  document.addEventListener("reset", markSent);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var detail = event.detail || {};
    var region = detail.elt;
    var trigger = detail.requestConfig && detail.requestConfig.triggeringEvent;
    if (!region || !trigger || String(trigger.type).indexOf("sse:") !== 0) return;
    if (region.querySelector && region.querySelector("form[data-live-dirty]")) {
      event.preventDefault();
      region.setAttribute("data-live-pending", "");
    }
  });
})();
