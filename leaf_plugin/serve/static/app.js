// The page of `semilearn serve`: photos (chosen or dropped) and webcam frames go to /api/predict;
// each face is boxed with its top class, its class probabilities drawn as bars beside the picture,
// and for LEAF models the selected face's expert gate weights as a small chart.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { model: null, selected: null, camera: null };

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function status(text, isError = false) {
  const line = $("#status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

async function loadModel() {
  const response = await fetch("/api/model");
  const info = await response.json();
  state.model = info;
  let line = `${info.kind} ${info.file.split("/").pop()}: ${info.algorithm || "model"} on ${info.dataset || "?"}, ` +
    `${info.class_names.length} classes (${info.class_names.join(", ")}), ${info.input_size} px faces`;
  if (info.shipped && info.shipped.accuracy) {
    const acc = info.shipped.accuracy;
    line += `; ${acc.split} top-1 ${(100 * acc.top1).toFixed(1)} %`;
  }
  $("#model-line").textContent = line;
}

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const start = performance.now();
  const response = await fetch("/api/predict?top=3", { method: "POST", body: form });
  let body;
  try { body = await response.json(); } catch (e) { body = { error: `HTTP ${response.status}` }; }
  const ms = performance.now() - start;
  if (!response.ok) throw new Error(`${name}: ${response.status} ${body.error || ""}`);
  return { record: body, ms };
}

// ---- drawing -----------------------------------------------------------------------------
function drawBoxes(overlay, record, onSelect) {
  overlay.replaceChildren();
  record.faces.forEach((face, i) => {
    const b = face.box;
    const box = el("div", "face-box");
    box.dataset.face = i;
    Object.assign(box.style, {
      left: `${(100 * b.x) / record.width}%`, top: `${(100 * b.y) / record.height}%`,
      width: `${(100 * b.w) / record.width}%`, height: `${(100 * b.h) / record.height}%`,
    });
    const top = face.top[0];
    box.append(el("span", "face-label", `${i}: ${face.prediction} ${top.prob.toFixed(2)}`));
    box.addEventListener("click", () => onSelect(i));
    overlay.append(box);
  });
}

function probabilityBars(face) {
  const rows = el("div", "bars");
  const names = state.model ? state.model.class_names : Object.keys(face.probs);
  for (const name of names) {
    const p = face.probs[name];
    const row = el("div", name === face.prediction ? "bar-row top" : "bar-row");
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    row.append(el("span", "name", name), bar, el("span", "value", p.toFixed(3)));
    rows.append(row);
  }
  return rows;
}

function drawFaces(panel, record, onSelect) {
  panel.replaceChildren();
  if (!record.faces.length) panel.append(el("p", "note", "no face found"));
  if (record.too_small && record.too_small.length) {
    panel.append(el("p", "note", `${record.too_small.length} face(s) too small for the model`));
  }
  record.faces.forEach((face, i) => {
    const card = el("div", "face-card");
    card.dataset.face = i;
    card.append(el("h4", "", `Face ${i}: ${face.prediction} (${face.top[0].prob.toFixed(2)})`), probabilityBars(face));
    card.addEventListener("click", () => onSelect(i));
    panel.append(card);
  });
}

function drawGates(title, face) {
  const section = $("#gates");
  if (!face || !face.gates) { section.hidden = true; return; }
  $("#gates-face").textContent = title;
  const charts = $("#gate-charts");
  charts.replaceChildren();
  for (const [level, weights] of Object.entries(face.gates)) {
    const chart = el("div", "gate-chart");
    const bars = el("div", "gate-bars");
    const names = el("div", "gate-names");
    weights.forEach((w, k) => {
      const bar = el("div");
      bar.style.height = `${Math.max(1, 100 * w)}%`;
      bar.title = `expert ${k}: ${w.toFixed(3)}`;
      bars.append(bar);
      names.append(el("span", "", String(k)));
    });
    chart.append(el("h4", "", `${level} level`), bars, names);
    charts.append(chart);
  }
  section.hidden = false;
}

// One picture's panel (or the live view): boxes, bars, and which face is selected.
function view(root, title) {
  let record = null;
  const select = (i) => {
    document.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
    root.querySelectorAll(`[data-face="${i}"]`).forEach((n) => n.classList.add("selected"));
    state.selected = { root, index: i };
    drawGates(`${title()} face ${i}`, record && record.faces[i]);
  };
  return (next) => {
    record = next;
    drawBoxes($(".overlay", root), record, select);
    drawFaces($(".faces", root), record, select);
    const keep = state.selected && state.selected.root === root && state.selected.index < record.faces.length;
    if (keep || (!state.selected && record.faces.length)) select(keep ? state.selected.index : 0);
  };
}

// ---- photos ------------------------------------------------------------------------------
async function addPhoto(file) {
  const root = el("div", "result");
  const picture = el("div", "picture");
  const img = el("img");
  img.alt = file.name;
  img.src = URL.createObjectURL(file);
  picture.append(img, el("div", "overlay"));
  const side = el("div", "side");
  side.append(el("p", "note", "analysing..."), el("div", "faces"));
  root.append(el("h3", "", file.name), picture, side);
  $("#results").prepend(root);
  const show = view(root, () => file.name);
  try {
    const { record, ms } = await predict(file, file.name);
    $(".note", side).textContent = `${record.num_faces} face(s), ${record.width}x${record.height} px, ${ms.toFixed(0)} ms`;
    show(record);
    root.dataset.faces = record.num_faces;
  } catch (err) {
    $(".note", side).textContent = err.message;
    root.dataset.error = err.message;
    status(err.message, true);
  }
}

async function addPhotos(files) {
  const pictures = [...files].filter((f) => f.type.startsWith("image/") || !f.type);
  if (!pictures.length) { status("no picture among the files dropped", true); return; }
  status(`analysing ${pictures.length} picture(s)...`);
  for (const file of pictures) await addPhoto(file);  // one at a time: the server analyses one at a time
  if (!$("#status").classList.contains("error")) status(`${pictures.length} picture(s) analysed`);
}

// ---- webcam ------------------------------------------------------------------------------
async function startCamera() {
  const live = $("#live");
  const video = $("#video");
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  video.srcObject = stream;
  await video.play();
  live.hidden = false;
  const canvas = document.createElement("canvas");
  const show = view(live, () => "webcam");
  const done = [];  // arrival times of the last answers, for frames per second
  const camera = { stream, running: true, frames: 0 };
  state.camera = camera;
  while (camera.running) {
    const began = performance.now();
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const { record, ms } = await predict(blob, "webcam.jpg");
      if (!camera.running) break;
      camera.frames += 1;
      const now = performance.now();
      done.push(now);
      while (done.length && now - done[0] > 3000) done.shift();
      const fps = done.length > 1 ? (1000 * (done.length - 1)) / (now - done[0]) : 0;
      show(record);
      live.dataset.frames = camera.frames;
      $("#live-stats").textContent =
        `${fps.toFixed(1)} frames/s · latency ${ms.toFixed(0)} ms · ${record.num_faces} face(s) · frame ${camera.frames}`;
    } catch (err) {
      status(err.message, true);
    }
    const interval = 1000 / Number($("#rate").value);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, interval - (performance.now() - began))));
  }
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.running = false;
  state.camera.stream.getTracks().forEach((t) => t.stop());
  state.camera = null;
}

function toggleCamera() {
  const button = $("#webcam");
  if (state.camera) {
    stopCamera();
    button.textContent = "Start the webcam";
    button.classList.remove("stop");
    status("webcam stopped");
    return;
  }
  button.textContent = "Stop the webcam";
  button.classList.add("stop");
  status("webcam on: a frame goes to the server a few times a second");
  startCamera().catch((err) => {
    stopCamera();
    button.textContent = "Start the webcam";
    button.classList.remove("stop");
    status(`webcam: ${err.message}`, true);
  });
}

// ---- wiring ------------------------------------------------------------------------------
function wire() {
  const drop = $("#drop");
  $("#files").addEventListener("change", (e) => addPhotos(e.target.files));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => addPhotos(e.dataTransfer.files));
  $("#webcam").addEventListener("click", toggleCamera);
  loadModel().catch((err) => status(`cannot read /api/model: ${err.message}`, true));
}

wire();
