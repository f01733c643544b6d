// Télésanté — video calls (WebRTC mesh, signalling over the platform's WebSocket) and the device test page.
// No library: RTCPeerConnection per remote participant, the newcomer offers (those already there wait for its
// offer: two offers crossing each other stalled ICE in Chromium), perfect negotiation for later renegotiations
// (ICE restarts), automatic reconnection of the WebSocket and of the media path.
"use strict";

(() => {
  const room = document.querySelector("[data-video-room]");
  if (room) startCall(room);
  const test = document.querySelector("[data-device-test]");
  if (test) deviceTest(test);

  function startCall(root) {
    const roomId = root.dataset.videoRoom;
    const role = root.dataset.role;
    const grid = root.querySelector("[data-call-grid]");
    const statusLine = root.querySelector("[data-call-status]");
    const waitingPanel = root.querySelector("[data-call-waiting]");
    const localVideo = root.querySelector("[data-local-video]");
    const chatList = root.querySelector("[data-chat-list]");
    const lobbyList = root.querySelector("[data-lobby-list]");
    const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/video/salles/${roomId}/ws`;

    const state = {
      me: null,
      iceServers: [],
      ws: null,
      local: null,
      peers: new Map(), // id -> {pc, name, tile, polite, makingOffer, ignoreOffer, ready, pending}
      muted: false,
      cameraOff: false,
      audioOnly: false,
      screen: null,
      videoDevice: null,
      fatal: false,
      retries: 0,
      retryTimer: null,
      lastPong: Date.now(),
      lowSince: null,
    };

    const setStatus = (status, text) => {
      root.dataset.status = status;
      statusLine.textContent = text;
    };
    // The last signalling steps, for support and the browser tests: what was sent, received, dropped.
    const journal = [];
    const note = (...parts) => {
      journal.push(`${Math.round(performance.now())} ${parts.join(" ")}`);
      if (journal.length > 80) journal.shift();
    };
    const send = (message) => {
      if (state.ws && state.ws.readyState === WebSocket.OPEN) {
        state.ws.send(JSON.stringify(message));
        return true;
      }
      if (message.type !== "ping") note("not sent (socket not open):", message.type, message.data && message.data.description ? message.data.description.type : "");
      return false;
    };

    // Exposed for the browser tests and for support: bytes and frames received from each participant.
    window.telesanteVideo = {
      state,
      journal,
      async stats() {
        const result = {};
        for (const [id, peer] of state.peers) {
          const entry = { audioBytes: 0, videoBytes: 0, framesDecoded: 0, connection: peer.pc.connectionState };
          const report = await peer.pc.getStats();
          report.forEach((s) => {
            if (s.type === "inbound-rtp" && s.kind === "audio") entry.audioBytes += s.bytesReceived || 0;
            if (s.type === "inbound-rtp" && s.kind === "video") {
              entry.videoBytes += s.bytesReceived || 0;
              entry.framesDecoded += s.framesDecoded || 0;
            }
          });
          result[id] = entry;
        }
        return result;
      },
    };

    async function getMedia() {
      const video = state.audioOnly || state.cameraOff ? false : state.videoDevice ? { deviceId: { exact: state.videoDevice } } : true;
      try {
        return await navigator.mediaDevices.getUserMedia({ audio: true, video });
      } catch (error) {
        if (video) {
          // no camera, or refused: audio only rather than nothing
          state.audioOnly = true;
          markPressed("audio-only", true);
          return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
        }
        throw error;
      }
    }

    async function startMedia() {
      try {
        state.local = await getMedia();
      } catch (error) {
        setStatus("error", "Caméra et micro inaccessibles : autorisez-les dans le navigateur, puis rechargez la page.");
        state.local = new MediaStream();
      }
      localVideo.srcObject = state.local;
      state.local.getAudioTracks().forEach((t) => (t.enabled = !state.muted));
    }

    function connect() {
      if (state.fatal) return;
      clearTimeout(state.retryTimer);
      const previous = state.ws;
      const ws = new WebSocket(wsUrl);
      state.ws = ws;
      if (previous && previous.readyState !== WebSocket.CLOSED) previous.close();
      ws.addEventListener("open", () => {
        state.retries = 0;
        state.lastPong = Date.now();
      });
      ws.addEventListener("message", (event) => {
        if (state.ws !== ws) return; // a socket replaced by a newer one: its messages are stale
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        state.lastPong = Date.now();
        onMessage(message);
      });
      ws.addEventListener("close", () => {
        // dropConnection() reports the close at once, the browser reports it again later: one retry only
        if (state.ws !== ws || state.fatal || ws.closeHandled) return;
        ws.closeHandled = true;
        clearTimeout(state.retryTimer);
        const delay = Math.min(8000, 500 * 2 ** state.retries++);
        note("socket closed, retry in", delay, "ms");
        setStatus("reconnecting", "Connexion perdue : reconnexion…");
        state.retryTimer = setTimeout(connect, delay);
      });
    }

    // A dead connection is not always reported at once (a network that drops silently): the device going
    // offline, or no answer to the heartbeat for 30 s, closes it and starts reconnecting.
    function dropConnection() {
      const ws = state.ws;
      if (!ws || state.fatal) return;
      ws.close();
      if (ws.readyState !== WebSocket.CLOSED) ws.dispatchEvent(new Event("close"));
    }
    window.addEventListener("offline", dropConnection);
    window.addEventListener("online", () => {
      const ws = state.ws;
      if (!state.fatal && (!ws || ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING)) {
        state.retries = 0;
        connect();
      }
    });

    function onMessage(message) {
      switch (message.type) {
        case "config":
          state.iceServers = message.ice_servers || [];
          break;
        case "waiting":
          waitingPanel.hidden = false;
          setStatus("waiting", message.message);
          break;
        case "welcome":
          note("welcome, peers:", message.peers.map((p) => p.id).join(",") || "none");
          if (window.telesanteVideo.welcomedAt == null) window.telesanteVideo.welcomedAt = performance.now();
          waitingPanel.hidden = true;
          state.me = message.you;
          for (const id of [...state.peers.keys()]) removePeer(id);
          message.peers.forEach((peer) => addPeer(peer, true));
          updateStatus();
          break;
        case "peer-joined":
          note("peer joined:", message.peer.id);
          if (state.peers.has(message.peer.id)) removePeer(message.peer.id);
          addPeer(message.peer, false);
          updateStatus();
          break;
        case "peer-left":
          note("peer left:", message.id);
          removePeer(message.id);
          updateStatus();
          break;
        case "signal":
          onSignal(message.from, message.data);
          break;
        case "lobby":
          renderLobby(message.waiting);
          break;
        case "chat":
          addChat(message);
          break;
        case "peer-state":
          peerState(message);
          break;
        case "replaced":
        case "refused":
        case "ended":
          state.fatal = true;
          setStatus("ended", message.message);
          hangUp();
          break;
        case "error":
          if (message.fatal) {
            state.fatal = true;
            setStatus("ended", message.message);
            hangUp();
          } else {
            note("error:", message.code || "", message.message);
            statusLine.textContent = message.message;
          }
          break;
        default:
          break;
      }
    }

    function updateStatus() {
      const count = state.peers.size;
      setStatus("in-call", count ? `En communication (${count + 1} participants)` : "Vous êtes seul(e) dans l'appel : les autres participants vont arriver.");
    }

    function addPeer(peer, initiator) {
      const pc = new RTCPeerConnection({ iceServers: state.iceServers });
      const tile = document.createElement("figure");
      tile.className = "call-tile";
      tile.dataset.peer = peer.id;
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      const caption = document.createElement("figcaption");
      caption.textContent = peer.name;
      tile.append(video, caption);
      grid.append(tile);
      const entry = {
        pc,
        name: peer.name,
        tile,
        caption,
        polite: state.me.id > peer.id,
        makingOffer: false,
        ignoreOffer: false,
        ready: initiator, // a peer already here waits for the newcomer's first offer
        disconnectedTimer: null,
        offerTimer: null,
      };
      state.peers.set(peer.id, entry);
      state.local.getTracks().forEach((track) => pc.addTrack(track, state.local));
      if (!state.local.getVideoTracks().length) pc.addTransceiver("video", { direction: "sendrecv" }); // a camera added later needs no renegotiation
      if (state.screen) replaceVideo(state.screen.getVideoTracks()[0]);
      pc.addEventListener("track", (event) => {
        video.srcObject = event.streams[0] || new MediaStream([event.track]);
      });
      // When the first remote image was shown, since the navigation started (support and bench.signalling).
      const firstFrame = () => {
        if (window.telesanteVideo.firstRemoteFrameAt == null) window.telesanteVideo.firstRemoteFrameAt = performance.now();
      };
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(firstFrame);
      else video.addEventListener("playing", firstFrame, { once: true });
      pc.addEventListener("icecandidate", (event) => {
        send({ type: "signal", to: peer.id, data: { candidate: event.candidate } });
      });
      pc.addEventListener("negotiationneeded", async () => {
        if (!entry.ready) return;
        try {
          entry.makingOffer = true;
          await pc.setLocalDescription();
          sendOffer(peer.id, entry, 0);
        } catch (error) {
          console.warn("offer failed", error);
        } finally {
          entry.makingOffer = false;
        }
      });
      pc.addEventListener("iceconnectionstatechange", () => {
        const ice = pc.iceConnectionState;
        clearTimeout(entry.disconnectedTimer);
        if (ice === "failed") restartIce(peer.id, entry);
        if (ice === "disconnected") entry.disconnectedTimer = setTimeout(() => restartIce(peer.id, entry), 3000);
      });
    }

    // A signalling message can be lost (a socket replaced while an offer was on its way): an offer still
    // unanswered after a few seconds is sent again; the other side answers a repeated offer like the first.
    function sendOffer(id, entry, attempt) {
      clearTimeout(entry.offerTimer);
      if (state.peers.get(id) !== entry || entry.pc.signalingState !== "have-local-offer") return;
      const sent = send({ type: "signal", to: id, data: { description: entry.pc.localDescription } });
      note(attempt ? `offer sent again (${attempt})` : "offer sent", "to", id, sent ? "" : "(dropped)");
      if (attempt < 5) entry.offerTimer = setTimeout(() => sendOffer(id, entry, attempt + 1), 4000);
    }

    function restartIce(id, entry) {
      if (!state.peers.has(id) || !entry.ready) return;
      send({ type: "incident", kind: "ice_restart", peer: id });
      entry.pc.restartIce();
    }

    async function onSignal(from, data) {
      const entry = state.peers.get(from);
      if (!entry) return;
      const pc = entry.pc;
      try {
        if (data.description) {
          const description = data.description;
          const collision = description.type === "offer" && (entry.makingOffer || pc.signalingState !== "stable");
          entry.ignoreOffer = !entry.polite && collision;
          note(description.type, "from", from, entry.ignoreOffer ? "ignored (collision)" : "");
          if (entry.ignoreOffer) return;
          if (description.type === "answer" && pc.signalingState === "stable") return; // an offer sent twice, answered twice
          await pc.setRemoteDescription(description);
          if (description.type === "offer") {
            await pc.setLocalDescription();
            send({ type: "signal", to: from, data: { description: pc.localDescription } });
          }
          entry.ready = true;
        } else if (data.candidate !== undefined) {
          try {
            await pc.addIceCandidate(data.candidate);
          } catch (error) {
            if (!entry.ignoreOffer) console.warn("candidate refused", error);
          }
        }
      } catch (error) {
        note("signal failed:", error.name, error.message);
        console.warn("signal failed", error);
      }
    }

    function removePeer(id) {
      const entry = state.peers.get(id);
      if (!entry) return;
      clearTimeout(entry.disconnectedTimer);
      clearTimeout(entry.offerTimer);
      entry.pc.close();
      entry.tile.remove();
      state.peers.delete(id);
    }

    function hangUp() {
      for (const id of [...state.peers.keys()]) removePeer(id);
      if (state.local) state.local.getTracks().forEach((t) => t.stop());
      if (state.screen) state.screen.getTracks().forEach((t) => t.stop());
      waitingPanel.hidden = true;
    }

    function renderLobby(waiting) {
      if (!lobbyList) return;
      lobbyList.replaceChildren();
      if (!waiting.length) {
        const li = document.createElement("li");
        li.className = "muted";
        li.textContent = "Personne n'attend.";
        lobbyList.append(li);
        return;
      }
      for (const person of waiting) {
        const li = document.createElement("li");
        li.dataset.waiting = person.id;
        const name = document.createElement("span");
        name.textContent = `${person.name} `;
        const admit = document.createElement("button");
        admit.type = "button";
        admit.textContent = "Admettre";
        admit.addEventListener("click", () => send({ type: "admit", id: person.id }));
        const refuse = document.createElement("button");
        refuse.type = "button";
        refuse.className = "link";
        refuse.textContent = "Refuser";
        refuse.addEventListener("click", () => send({ type: "refuse", id: person.id }));
        li.append(name, admit, " ", refuse);
        lobbyList.append(li);
      }
    }

    function addChat(message) {
      const li = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = `${message.name} : `;
      li.append(who);
      if (message.attachment) {
        const link = document.createElement("a");
        link.href = message.attachment.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = message.attachment.filename;
        li.append("a partagé ", link);
      } else {
        li.append(message.text);
      }
      chatList.append(li);
      chatList.scrollTop = chatList.scrollHeight;
    }

    function peerState(message) {
      const entry = state.peers.get(message.id);
      if (!entry) return;
      // each message carries what changed: the caption shows everything known of this participant
      const flags = (entry.flags = { ...entry.flags, ...message });
      const notes = [];
      if (flags.muted) notes.push("micro coupé");
      if (flags.audio_only) notes.push("audio seul");
      if (flags.screen) notes.push("partage d'écran");
      entry.caption.textContent = notes.length ? `${entry.name} (${notes.join(", ")})` : entry.name;
    }

    function markPressed(action, pressed) {
      const button = root.querySelector(`[data-action="${action}"]`);
      if (button) button.setAttribute("aria-pressed", String(pressed));
    }

    function videoSenders() {
      return [...state.peers.values()].flatMap((entry) =>
        entry.pc.getTransceivers().filter((t) => t.receiver.track && t.receiver.track.kind === "video").map((t) => t.sender)
      );
    }

    function replaceVideo(track) {
      for (const sender of videoSenders()) sender.replaceTrack(track).catch(() => {});
    }

    async function setAudioOnly(on, reason, weakNetwork) {
      state.audioOnly = on;
      markPressed("audio-only", on);
      if (on) {
        state.local.getVideoTracks().forEach((t) => {
          t.stop();
          state.local.removeTrack(t);
        });
        if (!state.screen) replaceVideo(null);
      } else {
        try {
          const fresh = await navigator.mediaDevices.getUserMedia({ video: state.videoDevice ? { deviceId: { exact: state.videoDevice } } : true });
          const track = fresh.getVideoTracks()[0];
          state.local.addTrack(track);
          if (!state.screen) replaceVideo(track);
        } catch (error) {
          state.audioOnly = true;
          markPressed("audio-only", true);
        }
      }
      localVideo.srcObject = state.local;
      send(weakNetwork && state.audioOnly ? { type: "state", audio_only: true, weak_network: true } : { type: "state", audio_only: state.audioOnly });
      if (reason) statusLine.textContent = reason;
    }

    async function switchCamera() {
      const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
      if (cameras.length < 2 || state.audioOnly) {
        statusLine.textContent = "Une seule caméra disponible.";
        return;
      }
      const current = state.local.getVideoTracks()[0];
      const currentId = current ? current.getSettings().deviceId : null;
      const next = cameras[(cameras.findIndex((c) => c.deviceId === currentId) + 1) % cameras.length];
      const fresh = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: next.deviceId } } });
      const track = fresh.getVideoTracks()[0];
      if (current) {
        current.stop();
        state.local.removeTrack(current);
      }
      state.local.addTrack(track);
      state.videoDevice = next.deviceId;
      localVideo.srcObject = state.local;
      if (!state.screen) replaceVideo(track);
    }

    async function toggleScreen() {
      if (state.screen) {
        state.screen.getTracks().forEach((t) => t.stop());
        state.screen = null;
        replaceVideo(state.local.getVideoTracks()[0] || null);
        markPressed("screen", false);
        send({ type: "state", screen: false });
        return;
      }
      try {
        state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
      } catch (error) {
        return;
      }
      const track = state.screen.getVideoTracks()[0];
      track.addEventListener("ended", () => state.screen && toggleScreen());
      replaceVideo(track);
      markPressed("screen", true);
      send({ type: "state", screen: true });
    }

    // Weak network: below ~150 kbit/s available for 10 s, video is dropped (audio keeps the consultation going).
    async function watchBandwidth() {
      if (state.audioOnly || !state.peers.size) {
        state.lowSince = null;
        return;
      }
      let lowest = Infinity;
      for (const entry of state.peers.values()) {
        const report = await entry.pc.getStats();
        report.forEach((s) => {
          if (s.type === "candidate-pair" && s.nominated && s.availableOutgoingBitrate) lowest = Math.min(lowest, s.availableOutgoingBitrate);
        });
      }
      if (lowest < 150000) {
        state.lowSince = state.lowSince || Date.now();
        if (Date.now() - state.lowSince > 10000) setAudioOnly(true, "Réseau faible : passage en audio seul. Vous pouvez réactiver la vidéo.", true);
      } else {
        state.lowSince = null;
      }
    }

    root.querySelector("[data-action=mute]").addEventListener("click", () => {
      state.muted = !state.muted;
      state.local.getAudioTracks().forEach((t) => (t.enabled = !state.muted));
      markPressed("mute", state.muted);
      send({ type: "state", muted: state.muted });
    });
    root.querySelector("[data-action=camera]").addEventListener("click", () => {
      state.cameraOff = !state.cameraOff;
      state.local.getVideoTracks().forEach((t) => (t.enabled = !state.cameraOff));
      markPressed("camera", state.cameraOff);
      send({ type: "state", camera_off: state.cameraOff });
    });
    root.querySelector("[data-action=switch-camera]").addEventListener("click", () => switchCamera().catch(() => {}));
    root.querySelector("[data-action=audio-only]").addEventListener("click", () => setAudioOnly(!state.audioOnly));
    const screenButton = root.querySelector("[data-action=screen]");
    if (screenButton) screenButton.addEventListener("click", () => toggleScreen());
    root.querySelector("[data-action=leave]").addEventListener("click", () => {
      state.fatal = true;
      send({ type: "leave" });
      hangUp();
      setStatus("ended", "Vous avez quitté l'appel.");
    });
    root.querySelector("[data-chat-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = event.target.elements.text;
      if (input.value.trim()) send({ type: "chat", text: input.value.trim() });
      input.value = "";
    });
    const shareForm = root.querySelector("[data-share-form]");
    if (shareForm) {
      shareForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const response = await fetch(`/video/salles/${roomId}/fichiers`, {
          method: "POST",
          body: new FormData(shareForm),
          headers: { "X-CSRF-Token": csrf },
          credentials: "same-origin",
        });
        if (!response.ok) {
          let detail = "Envoi impossible.";
          try {
            detail = (await response.json()).detail || detail;
          } catch (error) {
            /* not JSON */
          }
          statusLine.textContent = detail;
        } else {
          shareForm.reset();
        }
      });
    }
    window.addEventListener("pagehide", () => send({ type: "leave" }));
    setInterval(() => {
      if (state.ws && state.ws.readyState === WebSocket.OPEN && Date.now() - state.lastPong > 30000) dropConnection();
      send({ type: "ping" });
    }, 10000);
    setInterval(() => watchBandwidth().catch(() => {}), 2000);

    startMedia().then(connect);
  }

  function deviceTest(root) {
    const video = root.querySelector("[data-test-video]");
    const meter = root.querySelector("[data-mic-level]");
    const result = (name, text) => (root.querySelector(`[data-result="${name}"]`).textContent = text);
    root.querySelector("[data-action=start-test]").addEventListener("click", async () => {
      root.dataset.status = "running";
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        video.srcObject = stream;
        const track = stream.getVideoTracks()[0];
        const settings = track ? track.getSettings() : {};
        result("camera", track ? `OK (${settings.width || "?"}×${settings.height || "?"})` : "absente");
        const context = new AudioContext();
        const analyser = context.createAnalyser();
        context.createMediaStreamSource(stream).connect(analyser);
        const samples = new Uint8Array(analyser.fftSize);
        let loudest = 0;
        const sample = () => {
          analyser.getByteTimeDomainData(samples);
          const level = Math.max(...samples.map((v) => Math.abs(v - 128))) / 128;
          loudest = Math.max(loudest, level);
          meter.value = level;
          result("microphone", loudest > 0.02 ? "OK (son capté)" : "parlez pour vérifier…");
          if (root.isConnected) requestAnimationFrame(sample);
        };
        sample();
      } catch (error) {
        result("camera", "inaccessible (autorisez la caméra)");
        result("microphone", "inaccessible (autorisez le micro)");
      }
      try {
        const started = performance.now();
        const response = await fetch("/video/test/debit", { cache: "no-store" });
        const bytes = (await response.arrayBuffer()).byteLength;
        const seconds = (performance.now() - started) / 1000;
        const mbps = (bytes * 8) / seconds / 1e6;
        result("bandwidth", `${mbps.toFixed(1)} Mbit/s ${mbps >= 1.5 ? "(suffisant pour la vidéo)" : "(faible : l'audio seul est conseillé)"}`);
      } catch (error) {
        result("bandwidth", "plateforme injoignable");
      }
      root.dataset.status = "done";
    });
    root.querySelector("[data-action=play-tone]").addEventListener("click", () => {
      const context = new AudioContext();
      const oscillator = context.createOscillator();
      oscillator.frequency.value = 440;
      oscillator.connect(context.destination);
      oscillator.start();
      oscillator.stop(context.currentTime + 0.8);
      result("speakers", "entendez-vous le son ? Sinon, vérifiez le volume.");
    });
  }
})();
