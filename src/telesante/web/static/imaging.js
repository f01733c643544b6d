// Télésanté — imaging in the case page: DICOM upload with a progress bar, and the viewer (canvas, DICOMweb).
// No framework, no inline script (strict CSP): the page carries its settings in data- attributes.
(function () {
  "use strict";

  // --- upload: the files of a folder, or zip archives, sent in batches -------------------------------------

  const BATCH_BYTES = 48 * 1024 * 1024;
  const BATCH_FILES = 200;

  function batches(files) {
    const out = [];
    let current = [], size = 0;
    for (const file of files) {
      if (current.length && (size + file.size > BATCH_BYTES || current.length >= BATCH_FILES)) {
        out.push(current); current = []; size = 0;
      }
      current.push(file); size += file.size;
    }
    if (current.length) out.push(current);
    return out;
  }

  function send(url, csrf, files, onProgress) {
    return new Promise(function (resolve, reject) {
      const body = new FormData();
      for (const file of files) body.append("files", file, file.webkitRelativePath || file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (event) { if (event.lengthComputable) onProgress(event.loaded); };
      xhr.onload = function () {
        let payload = null;
        try { payload = JSON.parse(xhr.responseText); } catch (e) { payload = null; }
        if (xhr.status >= 200 && xhr.status < 300 && payload) resolve(payload);
        else reject(new Error((payload && payload.detail) || "Envoi refusé (" + xhr.status + ")."));
      };
      xhr.onerror = function () { reject(new Error("Connexion interrompue pendant l'envoi.")); };
      xhr.send(body);
    });
  }

  async function upload(form, fileList) {
    const files = Array.from(fileList);
    if (!files.length) return;
    const progress = form.querySelector("progress");
    const status = form.querySelector(".upload-status");
    const total = files.reduce(function (sum, f) { return sum + f.size; }, 0) || 1;
    let done = 0;
    const summary = { stored: 0, already: 0, ignored: 0, failed: [], attached: [], not_attached: [] };
    progress.hidden = false;
    progress.value = 0;
    form.querySelectorAll("input").forEach(function (input) { input.disabled = true; });
    try {
      for (const batch of batches(files)) {
        const batchSize = batch.reduce(function (sum, f) { return sum + f.size; }, 0);
        status.textContent = "Envoi… " + Math.round((done / total) * 100) + " %";
        const result = await send(form.dataset.uploadUrl, form.dataset.csrf, batch, function (loaded) {
          progress.value = Math.min(100, ((done + loaded) / total) * 100);
          status.textContent = "Envoi… " + Math.round(progress.value) + " %";
        });
        done += batchSize;
        summary.stored += result.stored; summary.already += result.already;
        summary.ignored += result.ignored_count;
        summary.failed = summary.failed.concat(result.failed);
        summary.attached = summary.attached.concat(result.attached);
        summary.not_attached = summary.not_attached.concat(result.not_attached);
      }
      progress.value = 100;
      const parts = [summary.stored + " image(s) reçue(s)"];
      if (summary.already) parts.push(summary.already + " déjà présente(s)");
      if (summary.ignored) parts.push(summary.ignored + " fichier(s) non DICOM ignoré(s)");
      if (summary.failed.length) parts.push(summary.failed.length + " refusée(s) : " + summary.failed.slice(0, 3).join(" ; "));
      if (summary.attached.length) parts.push("jointe(s) : " + summary.attached.join(", "));
      if (summary.not_attached.length) parts.push("non jointe(s) : " + summary.not_attached.join(" ; "));
      const message = parts.join(" · ") + ".";
      status.textContent = message;
      const target = document.getElementById("demande");
      if (summary.attached.length && target && window.htmx) {
        // the page keeps the summary outside the part that is re-read
        const kept = document.getElementById("imagerie-etat");
        if (kept) kept.textContent = message;
        window.htmx.ajax("GET", window.location.pathname, { target: "#demande", swap: "innerHTML" });
      }
    } catch (error) {
      status.textContent = error.message;
    } finally {
      form.querySelectorAll("input").forEach(function (input) { input.disabled = false; });
    }
  }

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-upload-input")) return;
    const form = input.closest("form.dicom-upload");
    if (form) upload(form, input.files);
  });

  // --- viewer ------------------------------------------------------------------------------------------------

  const root = document.getElementById("viewer");
  if (!root) return;

  const base = root.dataset.dicomweb;
  const studyUid = root.dataset.study;
  const presets = JSON.parse(root.dataset.presets);
  const canvas = root.querySelector(".viewer-canvas");
  const ctx = canvas.getContext("2d");
  const seriesBar = root.querySelector(".viewer-series");
  const overlay = {};
  root.querySelectorAll("[data-overlay]").forEach(function (el) { overlay[el.dataset.overlay] = el; });
  const errorBox = root.querySelector(".viewer-error");
  const CONCURRENCY = 6;

  const state = {
    series: [], current: 0, slice: 0, center: 40, width: 80,
    zoom: 1, panX: 0, panY: 0, tool: "window", measure: [], drag: null,
  };
  const frames = new Map(); // SOP Instance UID -> typed array of stored values
  const pending = new Set();
  let wanted = []; // the load queue, nearest slices first
  let active = 0;
  let lut = null, lutKey = "";
  let offscreen = null, offscreenCtx = null, imageData = null;

  function value(item, tag) {
    const element = item[tag];
    return element && element.Value ? element.Value[0] : undefined;
  }
  function values(item, tag) {
    const element = item[tag];
    return element && element.Value ? element.Value : [];
  }
  function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }

  function describeInstance(item) {
    const orientation = values(item, "00200037").map(Number);
    const position = values(item, "00200032").map(Number);
    let z = Number(value(item, "00200013") || 0);
    if (orientation.length === 6 && position.length === 3) {
      const n = [
        orientation[1] * orientation[5] - orientation[2] * orientation[4],
        orientation[2] * orientation[3] - orientation[0] * orientation[5],
        orientation[0] * orientation[4] - orientation[1] * orientation[3],
      ];
      z = n[0] * position[0] + n[1] * position[1] + n[2] * position[2];
    }
    const spacing = values(item, "00280030").map(Number);
    const centers = values(item, "00281050"), widths = values(item, "00281051");
    return {
      sop: value(item, "00080018"),
      number: Number(value(item, "00200013") || 0),
      z: z,
      rows: Number(value(item, "00280010")),
      columns: Number(value(item, "00280011")),
      bits: Number(value(item, "00280100") || 16),
      signed: Number(value(item, "00280103") || 0) === 1,
      samples: Number(value(item, "00280002") || 1),
      photometric: String(value(item, "00280004") || "MONOCHROME2"),
      slope: Number(value(item, "00281053") || 1),
      intercept: Number(value(item, "00281052") || 0),
      spacing: spacing.length === 2 ? spacing : null,
      center: centers.length ? Number(centers[0]) : null,
      width: widths.length ? Number(widths[0]) : null,
    };
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/dicom+json" } });
    if (!response.ok) throw new Error("Lecture impossible (" + response.status + ") : " + url.split("/dicomweb")[1]);
    return response.json();
  }

  async function loadStudy() {
    const seriesList = await getJson(base + "/studies/" + studyUid + "/series");
    seriesList.sort(function (a, b) { return Number(value(a, "00200011") || 0) - Number(value(b, "00200011") || 0); });
    for (const item of seriesList) {
      const uid = value(item, "0020000E");
      const metadata = await getJson(base + "/studies/" + studyUid + "/series/" + uid + "/metadata");
      const instances = metadata.map(describeInstance).filter(function (i) { return i.rows && i.columns && i.sop; });
      if (!instances.length) continue;
      instances.sort(function (a, b) { return (a.z - b.z) || (a.number - b.number); });
      state.series.push({
        uid: uid,
        number: value(item, "00200011"),
        modality: value(item, "00080060") || "",
        description: value(item, "0008103E") || "Série",
        instances: instances,
      });
      if (state.series.length === 1) { selectSeries(0); }
    }
    buildThumbnails();
    if (!state.series.length) showError("Aucune image affichable dans cette étude.");
  }

  function buildThumbnails() {
    seriesBar.textContent = "";
    state.series.forEach(function (series, index) {
      const middle = series.instances[Math.floor(series.instances.length / 2)];
      const button = document.createElement("button");
      button.type = "button";
      button.className = "viewer-thumb";
      button.setAttribute("role", "option");
      button.dataset.series = String(index);
      const img = document.createElement("img");
      img.alt = "";
      img.loading = "lazy";
      img.src = base + "/studies/" + studyUid + "/series/" + series.uid + "/instances/" + middle.sop + "/thumbnail";
      const label = document.createElement("span");
      label.textContent = (series.number != null ? series.number + " · " : "") + series.description + " (" + series.instances.length + ")";
      button.append(img, label);
      button.addEventListener("click", function () { selectSeries(index); root.focus(); });
      seriesBar.append(button);
    });
    markSelected();
  }

  function markSelected() {
    seriesBar.querySelectorAll(".viewer-thumb").forEach(function (button) {
      button.setAttribute("aria-selected", String(Number(button.dataset.series) === state.current));
    });
  }

  function currentSeries() { return state.series[state.current]; }
  function currentInstance() { const s = currentSeries(); return s ? s.instances[state.slice] : null; }

  function selectSeries(index) {
    state.current = index;
    const series = currentSeries();
    state.slice = 0;
    const first = series.instances[0];
    const preset = presets[0];
    state.center = first.center != null ? first.center : preset.center;
    state.width = first.width != null ? first.width : preset.width;
    state.zoom = 1; state.panX = 0; state.panY = 0; state.measure = [];
    root.dataset.slices = String(series.instances.length);
    overlay.series.textContent = "Série " + (series.number != null ? series.number : "") + " — " + series.description;
    markSelected();
    schedule();
    draw();
  }

  // Nearest slices first: what the user is looking at, then around it.
  function schedule() {
    const series = currentSeries();
    if (!series) return;
    const order = [];
    const count = series.instances.length;
    for (let d = 0; d < count; d++) {
      for (const i of d === 0 ? [state.slice] : [state.slice + d, state.slice - d]) {
        if (i >= 0 && i < count) order.push(series.instances[i]);
      }
    }
    wanted = order.filter(function (instance) { return !frames.has(instance.sop) && !pending.has(instance.sop); });
    pump();
  }

  function pump() {
    while (active < CONCURRENCY && wanted.length) {
      const instance = wanted.shift();
      if (frames.has(instance.sop) || pending.has(instance.sop)) continue;
      fetchFrame(instance);
    }
  }

  async function fetchFrame(instance) {
    const series = state.series.find(function (s) { return s.instances.indexOf(instance) >= 0; });
    active += 1; pending.add(instance.sop);
    try {
      const url = base + "/studies/" + studyUid + "/series/" + series.uid + "/instances/" + instance.sop + "/frames/1";
      const response = await fetch(url, { headers: { Accept: "application/octet-stream" } });
      if (!response.ok) throw new Error("Image non disponible (" + response.status + ").");
      const buffer = await response.arrayBuffer();
      let pixels;
      if (instance.bits === 8) pixels = new Uint8Array(buffer);
      else pixels = instance.signed ? new Int16Array(buffer) : new Uint16Array(buffer);
      frames.set(instance.sop, pixels);
      root.dataset.loaded = String(frames.size);
      if (frames.size === series.instances.length) root.dataset.allLoadedMs = String(Math.round(performance.now()));
      if (instance === currentInstance()) draw();
    } catch (error) {
      showError(error.message);
    } finally {
      active -= 1; pending.delete(instance.sop);
      pump();
    }
  }

  function buildLut(instance) {
    const key = [instance.bits, instance.signed, instance.slope, instance.intercept, instance.photometric, state.center, state.width].join(":");
    if (key === lutKey) return lut;
    const size = instance.bits === 8 ? 256 : 65536;
    const offset = instance.signed && instance.bits !== 8 ? 32768 : 0;
    const table = new Uint8ClampedArray(size);
    const low = state.center - 0.5 - (state.width - 1) / 2;
    const span = Math.max(state.width - 1, 1);
    const invert = instance.photometric === "MONOCHROME1";
    for (let raw = 0; raw < size; raw++) {
      const v = (raw - offset) * instance.slope + instance.intercept;
      let out = ((v - low) / span) * 255;
      out = out < 0 ? 0 : out > 255 ? 255 : out;
      table[raw] = invert ? 255 - out : out;
    }
    lut = table; lutKey = key;
    return lut;
  }

  function fitScale(instance) {
    return Math.min(canvas.width / instance.columns, canvas.height / instance.rows) * state.zoom;
  }

  function draw() {
    const instance = currentInstance();
    const series = currentSeries();
    if (!instance) return;
    resizeCanvas();
    const pixels = frames.get(instance.sop);
    root.dataset.slice = String(state.slice + 1);
    root.dataset.window = Math.round(state.center) + "/" + Math.round(state.width);
    overlay.slice.textContent = "Coupe " + (state.slice + 1) + " / " + series.instances.length + (pixels ? "" : " — chargement…");
    overlay.window.textContent = "Niveau " + Math.round(state.center) + " · Largeur " + Math.round(state.width);
    overlay.zoom.textContent = "Zoom " + Math.round(state.zoom * 100) + " %";
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!pixels) return;
    if (!offscreen || offscreen.width !== instance.columns || offscreen.height !== instance.rows) {
      offscreen = document.createElement("canvas");
      offscreen.width = instance.columns; offscreen.height = instance.rows;
      offscreenCtx = offscreen.getContext("2d");
      imageData = offscreenCtx.createImageData(instance.columns, instance.rows);
    }
    const out = imageData.data;
    const count = instance.rows * instance.columns;
    if (instance.samples === 3) {
      for (let i = 0, j = 0; i < count; i++, j += 4) {
        out[j] = pixels[i * 3]; out[j + 1] = pixels[i * 3 + 1]; out[j + 2] = pixels[i * 3 + 2]; out[j + 3] = 255;
      }
    } else {
      const table = buildLut(instance);
      const offset = instance.signed && instance.bits !== 8 ? 32768 : 0;
      for (let i = 0, j = 0; i < count; i++, j += 4) {
        const g = table[pixels[i] + offset];
        out[j] = g; out[j + 1] = g; out[j + 2] = g; out[j + 3] = 255;
      }
    }
    offscreenCtx.putImageData(imageData, 0, 0);
    // measured by bench.viewer: time from the navigation to the first image on screen
    if (!root.dataset.firstImageMs) root.dataset.firstImageMs = String(Math.round(performance.now()));
    const scale = fitScale(instance);
    const x = (canvas.width - instance.columns * scale) / 2 + state.panX;
    const y = (canvas.height - instance.rows * scale) / 2 + state.panY;
    ctx.imageSmoothingEnabled = scale < 1;
    ctx.setTransform(scale, 0, 0, scale, x, y);
    ctx.drawImage(offscreen, 0, 0);
    drawMeasure(instance, scale, x, y);
  }

  function drawMeasure(instance, scale, x, y) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (!state.measure.length) { overlay.measure.textContent = ""; return; }
    ctx.strokeStyle = "#ffd400"; ctx.fillStyle = "#ffd400"; ctx.lineWidth = 2;
    const points = state.measure.map(function (p) { return [x + p[0] * scale, y + p[1] * scale]; });
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    if (points[1]) ctx.lineTo(points[1][0], points[1][1]);
    ctx.stroke();
    points.forEach(function (p) { ctx.fillRect(p[0] - 3, p[1] - 3, 6, 6); });
    if (state.measure.length === 2) {
      const dx = state.measure[1][0] - state.measure[0][0], dy = state.measure[1][1] - state.measure[0][1];
      let text;
      if (instance.spacing) {
        text = Math.hypot(dx * instance.spacing[1], dy * instance.spacing[0]).toFixed(1) + " mm";
      } else {
        text = Math.hypot(dx, dy).toFixed(1) + " pixels (espacement inconnu)";
      }
      overlay.measure.textContent = "Distance : " + text;
      root.dataset.measure = text;
    }
  }

  function resizeCanvas() {
    const stage = canvas.parentElement;
    const width = Math.max(256, Math.floor(stage.clientWidth));
    const height = Math.max(256, Math.floor(stage.clientHeight));
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  }

  function toImage(event) {
    const instance = currentInstance();
    const rect = canvas.getBoundingClientRect();
    const scale = fitScale(instance);
    const x = (canvas.width - instance.columns * scale) / 2 + state.panX;
    const y = (canvas.height - instance.rows * scale) / 2 + state.panY;
    const cx = (event.clientX - rect.left) * (canvas.width / rect.width);
    const cy = (event.clientY - rect.top) * (canvas.height / rect.height);
    return [(cx - x) / scale, (cy - y) / scale];
  }

  function go(delta) {
    const series = currentSeries();
    if (!series) return;
    const next = Math.max(0, Math.min(series.instances.length - 1, state.slice + delta));
    if (next === state.slice) return;
    state.slice = next;
    state.measure = [];
    schedule();
    draw();
  }

  function applyPreset(key) {
    const preset = presets.find(function (p) { return p.key === key; });
    if (!preset) return;
    state.center = preset.center; state.width = preset.width;
    draw();
  }

  function setTool(tool) {
    state.tool = tool;
    const button = root.querySelector('[data-tool="measure"]');
    button.setAttribute("aria-pressed", String(tool === "measure"));
    canvas.style.cursor = tool === "measure" ? "crosshair" : "default";
  }

  function zoomBy(factor) {
    state.zoom = Math.max(0.25, Math.min(16, state.zoom * factor));
    draw();
  }

  function reset() {
    const first = currentSeries() && currentSeries().instances[0];
    state.zoom = 1; state.panX = 0; state.panY = 0; state.measure = [];
    if (first) {
      state.center = first.center != null ? first.center : presets[0].center;
      state.width = first.width != null ? first.width : presets[0].width;
    }
    setTool("window");
    draw();
  }

  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    if (event.ctrlKey) zoomBy(event.deltaY < 0 ? 1.1 : 1 / 1.1);
    else go(event.deltaY > 0 ? 1 : -1);
  }, { passive: false });

  canvas.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  canvas.addEventListener("pointerdown", function (event) {
    root.focus();
    if (!currentInstance()) return;
    if (state.tool === "measure" && event.button === 0 && !event.shiftKey) {
      const point = toImage(event);
      state.measure = state.measure.length === 1 ? [state.measure[0], point] : [point];
      draw();
      return;
    }
    const pan = event.button === 1 || event.button === 2 || event.shiftKey;
    state.drag = { x: event.clientX, y: event.clientY, pan: pan, center: state.center, width: state.width, panX: state.panX, panY: state.panY };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", function (event) {
    const drag = state.drag;
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (drag.pan) {
      state.panX = drag.panX + dx; state.panY = drag.panY + dy;
    } else {
      const sensitivity = Math.max(1, drag.width / 256);
      state.width = Math.max(1, drag.width + dx * sensitivity);
      state.center = drag.center + dy * sensitivity;
    }
    draw();
  });
  function endDrag(event) {
    if (state.drag) { state.drag = null; try { canvas.releasePointerCapture(event.pointerId); } catch (e) { /* released */ } }
  }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);

  root.addEventListener("keydown", function (event) {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const preset = presets.find(function (p) { return p.shortcut === event.key; });
    let handled = true;
    if (preset) applyPreset(preset.key);
    else if (event.key === "ArrowDown") go(1);
    else if (event.key === "ArrowUp") go(-1);
    else if (event.key === "PageDown") go(10);
    else if (event.key === "PageUp") go(-10);
    else if (event.key === "Home") go(-1e6);
    else if (event.key === "End") go(1e6);
    else if (event.key === "ArrowRight" && state.current < state.series.length - 1) selectSeries(state.current + 1);
    else if (event.key === "ArrowLeft" && state.current > 0) selectSeries(state.current - 1);
    else if (event.key === "+" || event.key === "=") zoomBy(1.25);
    else if (event.key === "-") zoomBy(0.8);
    else if (event.key === "m" || event.key === "M") setTool(state.tool === "measure" ? "window" : "measure");
    else if (event.key === "r" || event.key === "R") reset();
    else if (event.key === "?") toggleHelp();
    else handled = false;
    if (handled) event.preventDefault();
  });

  function toggleHelp() {
    const help = root.querySelector(".viewer-help");
    help.hidden = !help.hidden;
    root.querySelector('[data-action="help"]').setAttribute("aria-expanded", String(!help.hidden));
  }

  root.querySelectorAll("[data-preset]").forEach(function (button) {
    button.addEventListener("click", function () { applyPreset(button.dataset.preset); root.focus(); });
  });
  root.querySelector('[data-tool="measure"]').addEventListener("click", function () {
    setTool(state.tool === "measure" ? "window" : "measure"); root.focus();
  });
  root.querySelector('[data-action="reset"]').addEventListener("click", function () { reset(); root.focus(); });
  root.querySelector('[data-action="help"]').addEventListener("click", toggleHelp);
  window.addEventListener("resize", draw);

  loadStudy().catch(function (error) { showError(error.message); });
  root.focus();
})();
