// The locate page: send an image or a description to POST /locate, show the ranked places as
// thumbnails, and on a Leaflet map whose base layer is the gallery's own imagery (GET /tiles/...,
// served by this service: nothing is fetched from the internet) with the matches and the
// estimate's position and radius on top.
"use strict";

const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
const state = { map: null, points: null, resultLayer: null, galleryBounds: null, markers: new Map() };
const $ = (id) => document.getElementById(id);

function setStatus(message, isError) {
  const box = $("status");
  box.textContent = message || "";
  box.className = isError ? "error" : "";
}

function formatCoord(value) { return Number(value).toFixed(6); }

function formatMetres(metres) {
  return metres >= 10000 ? `${(metres / 1000).toFixed(0)} km`
    : metres >= 1000 ? `${(metres / 1000).toFixed(1)} km` : `${Math.round(metres)} m`;
}

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

// An id broken only after its separators (-, _, /, .), never inside a number.
function idNode(id) {
  const span = document.createElement("span");
  span.className = "id";
  span.title = id;
  const parts = String(id).split(/(?<=[-_/.])/);
  parts.forEach((part, i) => {
    span.append(part);
    if (i < parts.length - 1) span.append(document.createElement("wbr"));
  });
  return span;
}

function createMap() {
  const map = L.map("map", { worldCopyJump: true, maxZoom: 22 });
  map.attributionControl.setPrefix('<a href="/static/vendor/leaflet/LICENSE">Leaflet</a>');
  L.tileLayer("/tiles/{z}/{x}/{y}.png", {
    maxZoom: 22, tileSize: 256, attribution: "imagery: this gallery", className: "gallery-tiles",
  }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  map.setView([0, 0], 2);
  state.map = map;
  state.resultLayer = L.layerGroup().addTo(map);
  // A panel that changes size (phone rotation, the grid reflowing) needs Leaflet to re-measure.
  new ResizeObserver(() => map.invalidateSize()).observe($("map"));
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
    drawGallery(info.bounds);
  } catch (err) {
    $("gallery-summary").textContent = `gallery unavailable: ${err.message}`;
    setStatus(err.message, true);
  }
}

function drawGallery(bounds) {
  const { lat, lon } = state.points;
  const renderer = L.canvas({ padding: 0.2 });
  const layer = L.layerGroup();
  for (let i = 0; i < lat.length; i++) {
    L.circleMarker([lat[i], lon[i]], {
      renderer, radius: 2.5, weight: 1, color: "#ffffff", fillColor: "#5f6b78", fillOpacity: 0.9,
      interactive: false,
    }).addTo(layer);
  }
  layer.addTo(state.map);
  if (bounds) {
    state.galleryBounds = L.latLngBounds([bounds.south, bounds.west], [bounds.north, bounds.east]);
    state.map.fitBounds(state.galleryBounds.pad(0.15), { maxZoom: 18 });
  }
  document.body.dataset.map = "ready";
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
  preview.hidden = true; // shown once it decodes: a file the browser cannot read shows no broken icon
  preview.onload = () => { preview.hidden = false; };
  preview.onerror = () => { preview.hidden = true; preview.removeAttribute("src"); };
  preview.src = url;
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
    const body = JSON.stringify({ text, k: Number(k) });
    request = { method: "POST", headers: { "Content-Type": "application/json" }, body };
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
    $("query-preview").hidden = true;
    showResults({ matches: [], estimate: null });
    setStatus(err.message, true);
    document.body.dataset.state = "error";
  } finally {
    $("locate-button").disabled = false;
  }
}

function showResults(result) {
  const list = $("results");
  list.innerHTML = "";
  for (const match of result.matches) {
    const item = document.createElement("li");
    item.className = "result" + (match.rank === 1 ? " best" : "");
    item.dataset.id = match.id;
    item.dataset.rank = match.rank;
    const image = document.createElement("img");
    image.alt = `gallery image of ${match.id}`;
    image.onerror = () => { image.removeAttribute("src"); image.classList.add("missing"); };
    image.src = match.image_url;
    const rank = document.createElement("div");
    rank.className = "rank";
    rank.textContent = `#${match.rank}`;
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = `score ${match.score.toFixed(4)}`;
    const coords = document.createElement("div");
    coords.className = "coords";
    coords.textContent = `${formatCoord(match.lat)}, ${formatCoord(match.lon)}`;
    item.append(image, rank, idNode(match.id), score, coords);
    item.addEventListener("click", () => select(match.id));
    list.appendChild(item);
  }
  showEstimate(result.estimate);
  drawResults(result);
}

function showEstimate(estimate) {
  const box = $("estimate");
  if (!estimate) { box.hidden = true; box.textContent = ""; return; }
  const rate = estimate.coverage == null
    ? "spread of the top matches (not calibrated)"
    : `${Math.round(estimate.coverage * 100)}% of held-out places fall inside`;
  box.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = "Estimate ";
  const radius = document.createElement("span");
  radius.className = "nowrap";
  radius.textContent = `± ${formatMetres(estimate.radius_m)}`;
  box.append(strong, `${formatCoord(estimate.lat)}, ${formatCoord(estimate.lon)} `, radius, ` · ${rate}`);
  box.hidden = false;
}

function matchIcon(match) {
  return L.divIcon({
    className: "match-marker" + (match.rank === 1 ? " best" : ""),
    html: `<span>${match.rank}</span>`, iconSize: [24, 24], iconAnchor: [12, 12],
  });
}

function drawResults(result) {
  const layer = state.resultLayer;
  if (!layer) return;
  layer.clearLayers();
  state.markers.clear();
  const bounds = [];
  const estimate = result.estimate;
  if (estimate) {
    const circle = L.circle([estimate.lat, estimate.lon], {
      radius: estimate.radius_m, className: "estimate-circle", color: "#f1c40f", weight: 2,
      fillColor: "#f1c40f", fillOpacity: 0.12, interactive: false,
    }).addTo(layer);
    L.marker([estimate.lat, estimate.lon], {
      icon: L.divIcon({ className: "estimate-marker", iconSize: [22, 22], iconAnchor: [11, 11] }),
      title: "estimate", zIndexOffset: 1000, keyboard: false,
    }).addTo(layer);
    bounds.push(circle.getBounds());
  }
  for (const match of [...result.matches].reverse()) { // the best ends on top
    const marker = L.marker([match.lat, match.lon], {
      icon: matchIcon(match), title: `#${match.rank} ${match.id}`, zIndexOffset: 100 - match.rank,
    }).addTo(layer);
    marker.on("click", () => select(match.id));
    state.markers.set(match.id, marker);
    bounds.push(L.latLngBounds([match.lat, match.lon], [match.lat, match.lon]));
  }
  if (bounds.length) {
    const all = L.latLngBounds(bounds[0].getSouthWest(), bounds[0].getNorthEast());
    bounds.forEach((b) => all.extend(b));
    state.map.fitBounds(all.pad(0.2), { maxZoom: 19 });
  } else if (state.galleryBounds) {
    state.map.fitBounds(state.galleryBounds.pad(0.15), { maxZoom: 18 });
  }
}

function select(id) {
  for (const item of $("results").children) item.classList.toggle("selected", item.dataset.id === id);
  for (const [markerId, marker] of state.markers) {
    const element = marker.getElement();
    if (element) element.classList.toggle("selected", markerId === id);
  }
  const marker = state.markers.get(id);
  if (marker) state.map.panTo(marker.getLatLng());
}

document.addEventListener("DOMContentLoaded", () => {
  $("mode-image").addEventListener("change", onModeChange);
  $("mode-text").addEventListener("change", onModeChange);
  $("locate-form").addEventListener("submit", onSubmit);
  onModeChange();
  createMap();
  loadGallery();
});
