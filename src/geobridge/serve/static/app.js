// The locate page: send an image or a description to POST /locate, show the ranked places as
// thumbnails and on a map drawn from the gallery's own coordinates (no external tiles).
"use strict";

const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
const state = { points: null, matches: [], selected: null };
const $ = (id) => document.getElementById(id);

function setStatus(message, isError) {
  const box = $("status");
  box.textContent = message || "";
  box.className = isError ? "error" : "";
}

function formatCoord(value) { return Number(value).toFixed(6); }

async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  let payload = null;
  try { payload = await response.json(); } catch (err) { payload = null; }
  if (!response.ok) {
    const detail = payload && (payload.detail || payload.error);
    throw new Error(detail ? String(detail) : `request failed with status ${response.status}`);
  }
  return payload;
}

async function loadGallery() {
  try {
    const info = await fetchJSON("/gallery");
    $("gallery-summary").textContent =
      `${info.size.toLocaleString()} ${info.view} places · model ${info.model.name} · index ${info.index}`;
    const select = $("view-select");
    select.innerHTML = "";
    for (const view of info.query_views.filter((v) => v !== "text")) {
      const option = document.createElement("option");
      option.value = view;
      option.textContent = view;
      if (view === info.view) option.selected = true;
      select.appendChild(option);
    }
    if (!info.query_views.includes("text")) {
      $("mode-text").disabled = true;
      $("mode-text").parentElement.title = "this model has no text tower";
    }
    state.points = await fetchJSON("/gallery/points");
    $("map-caption").textContent = state.points.total > state.points.ids.length
      ? `(${state.points.ids.length.toLocaleString()} of ${state.points.total.toLocaleString()} places drawn)`
      : `(${state.points.total.toLocaleString()} places)`;
    drawMap();
  } catch (err) {
    $("gallery-summary").textContent = `gallery unavailable: ${err.message}`;
    setStatus(err.message, true);
  }
}

function currentMode() { return $("mode-text").checked ? "text" : "image"; }

function onModeChange() {
  const text = currentMode() === "text";
  $("text-fields").hidden = !text;
  $("image-fields").hidden = text;
}

function showQueryImage(file) {
  const preview = $("query-preview");
  if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
  const url = URL.createObjectURL(file);
  preview.dataset.url = url;
  preview.src = url;
  preview.hidden = false;
  $("query-text").hidden = true;
  $("query-echo").hidden = false;
}

function showQueryText(text) {
  $("query-text").textContent = text;
  $("query-text").hidden = false;
  $("query-preview").hidden = true;
  $("query-echo").hidden = false;
}

async function onSubmit(event) {
  event.preventDefault();
  const k = $("k-input").value || "5";
  let request;
  if (currentMode() === "text") {
    const text = $("text-input").value.trim();
    if (!text) { setStatus("type a description of the place first", true); return; }
    showQueryText(text);
    request = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text, k: Number(k) }) };
  } else {
    const file = $("image-input").files[0];
    if (!file) { setStatus("choose an image file first", true); return; }
    if (file.size > MAX_UPLOAD_BYTES) { setStatus("the image is larger than 20 MB", true); return; }
    showQueryImage(file);
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("view", $("view-select").value);
    form.append("k", k);
    request = { method: "POST", body: form };
  }
  $("locate-button").disabled = true;
  setStatus("locating…", false);
  try {
    const started = performance.now();
    const result = await fetchJSON("/locate", request);
    showResults(result);
    setStatus(`${result.matches.length} places in ${Math.round(performance.now() - started)} ms`, false);
    document.body.dataset.state = "done";
  } catch (err) {
    showResults({ matches: [] });
    setStatus(err.message, true);
    document.body.dataset.state = "error";
  } finally {
    $("locate-button").disabled = false;
  }
}

function showResults(result) {
  state.matches = result.matches;
  state.selected = null;
  const list = $("results");
  list.innerHTML = "";
  for (const match of result.matches) {
    const item = document.createElement("li");
    item.className = "result" + (match.rank === 1 ? " best" : "");
    item.dataset.id = match.id;
    item.dataset.rank = match.rank;
    const image = document.createElement("img");
    image.src = match.image_url;
    image.alt = `gallery image of ${match.id}`;
    image.loading = "lazy";
    const rank = document.createElement("div");
    rank.className = "rank";
    rank.textContent = `#${match.rank}`;
    const id = document.createElement("div");
    id.className = "id";
    id.textContent = match.id;
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = `score ${match.score.toFixed(4)}`;
    const coords = document.createElement("div");
    coords.className = "coords";
    coords.textContent = `${formatCoord(match.lat)}, ${formatCoord(match.lon)}`;
    item.append(image, rank, id, score, coords);
    item.addEventListener("click", () => { state.selected = match.id; highlight(); drawMap(); });
    list.appendChild(item);
  }
  drawMap();
}

function highlight() {
  for (const item of $("results").children) {
    item.classList.toggle("selected", item.dataset.id === state.selected);
  }
}

// Map: equirectangular projection of the gallery's bounding box, east-west scaled by cos(latitude)
// so distances look right; a scale bar in metres.
function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  const size = canvas.width;
  ctx.clearRect(0, 0, size, size);
  if (!state.points || state.points.ids.length === 0) return;
  const { lat, lon } = state.points;
  const all = { lat: lat.concat(state.matches.map((m) => m.lat)), lon: lon.concat(state.matches.map((m) => m.lon)) };
  const south = Math.min(...all.lat), north = Math.max(...all.lat);
  const west = Math.min(...all.lon), east = Math.max(...all.lon);
  const cosLat = Math.cos(((south + north) / 2) * Math.PI / 180);
  const spanX = Math.max((east - west) * cosLat, 1e-9), spanY = Math.max(north - south, 1e-9);
  const pad = 28, scale = (size - 2 * pad) / Math.max(spanX, spanY);
  const offX = (size - spanX * scale) / 2, offY = (size - spanY * scale) / 2;
  const project = (la, lo) => [offX + (lo - west) * cosLat * scale, size - (offY + (la - south) * scale)];

  ctx.fillStyle = "#9aa3ad";
  for (let i = 0; i < lat.length; i++) {
    const [x, y] = project(lat[i], lon[i]);
    ctx.beginPath(); ctx.arc(x, y, 2.2, 0, 2 * Math.PI); ctx.fill();
  }
  // Draw worst first so the best match ends on top.
  for (const match of [...state.matches].reverse()) {
    const [x, y] = project(match.lat, match.lon);
    const best = match.rank === 1;
    ctx.beginPath();
    ctx.arc(x, y, best ? 11 : 9, 0, 2 * Math.PI);
    ctx.fillStyle = best ? "#c0392b" : "#2c6fbb";
    ctx.fill();
    ctx.lineWidth = match.id === state.selected ? 3 : 1.5;
    ctx.strokeStyle = match.id === state.selected ? "#f1c40f" : "#fff";
    ctx.stroke();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(match.rank), x, y + 0.5);
  }
  drawScaleBar(ctx, size, scale);
  ctx.fillStyle = "#1d2430";
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.fillText("N ↑", 8, 16);
}

function drawScaleBar(ctx, size, scale) {
  const metresPerDegree = 111320;
  const pixelsPerMetre = scale / metresPerDegree;
  if (!isFinite(pixelsPerMetre) || pixelsPerMetre <= 0) return;
  const target = 120 / pixelsPerMetre;
  const nice = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10000, 100000, 1000000].map((e) => m * e)).sort((a, b) => a - b);
  const metres = nice.reduce((best, value) => (value <= target ? value : best), nice[0]);
  const width = metres * pixelsPerMetre;
  const x0 = 12, y0 = size - 12;
  ctx.strokeStyle = "#1d2430";
  ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x0, y0 - 5); ctx.lineTo(x0, y0); ctx.lineTo(x0 + width, y0); ctx.lineTo(x0 + width, y0 - 5); ctx.stroke();
  ctx.fillStyle = "#1d2430";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.fillText(metres >= 1000 ? `${metres / 1000} km` : `${metres} m`, x0 + width + 6, y0 - 1);
}

document.addEventListener("DOMContentLoaded", () => {
  $("mode-image").addEventListener("change", onModeChange);
  $("mode-text").addEventListener("change", onModeChange);
  $("locate-form").addEventListener("submit", onSubmit);
  onModeChange();
  loadGallery();
});
