// cnnlab-explore: the page. Plain ES module, no build step. The server computes every value with the run's own
// network (its checkpoint, eval mode); this page edits the input, sends it, and draws what comes back.
// window.explore holds what was sent and what is shown, for tests and for the curious.

const COLUMN = 360;        // pixels a stage's drawing may take across
const MAX_TILES = 64;      // channels drawn per stage (the rest are named, not drawn)
const $ = (id) => document.getElementById(id);

const state = {
  runs: [],          // /api/runs
  shown: [],         // ids of the runs drawn side by side
  base: null,        // Float32Array: the drawn or picked image, before shift and rotation
  shape: null,       // [C, H, W] of the input
  unit: null,        // {run, stage, channel, row, col}: the clicked unit
  busy: false, dirty: false, changedAt: 0,
};

const explore = window.explore = {
  ready: false, pending: 0, idle: false, lastSent: null, shown: {}, probs: {}, unit: null, timings: [],
  errors: [], layout: {},
};

// ---------- numbers on the wire ----------
function encode(array) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
function decode(text) {
  const raw = atob(text), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}
async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
  if (error) explore.errors.push(text);
}

// ---------- colour ----------
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis
const VIRIDIS = Array.from({length: 256}, (_, i) => {
  const t = i / 255 * (STOPS.length - 1), k = Math.min(Math.floor(t), STOPS.length - 2), f = t - k;
  return STOPS[k].map((v, j) => Math.round(v + f * (STOPS[k + 1][j] - v)));
});
function diverging(v) {  // v in [-1, 1]: blue, white, red
  const a = Math.min(1, Math.abs(v));
  return v < 0 ? [255 * (1 - a), 255 * (1 - a), 255] : [255, 255 * (1 - a), 255 * (1 - a)];
}

// ---------- the input: base image, then rotation and shift ----------
function edited() {
  const [C, H, W] = state.shape, out = new Float32Array(C * H * W);
  const dx = +$("dx").value, dy = +$("dy").value, angle = +$("angle").value * Math.PI / 180;
  const cos = Math.cos(angle), sin = Math.sin(angle), cy = (H - 1) / 2, cx = (W - 1) / 2;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    // the source of output pixel (y, x): undo the shift, then the rotation about the centre (bilinear)
    const ys = y - dy - cy, xs = x - dx - cx;
    const sy = cos * ys - sin * xs + cy, sx = sin * ys + cos * xs + cx;
    const y0 = Math.floor(sy), x0 = Math.floor(sx), fy = sy - y0, fx = sx - x0;
    for (let c = 0; c < C; c++) {
      let v = 0;
      for (const [yy, xx, w] of [[y0, x0, (1 - fy) * (1 - fx)], [y0, x0 + 1, (1 - fy) * fx],
                                 [y0 + 1, x0, fy * (1 - fx)], [y0 + 1, x0 + 1, fy * fx]]) {
        if (w > 0 && yy >= 0 && yy < H && xx >= 0 && xx < W) v += w * state.base[(c * H + yy) * W + xx];
      }
      out[(c * H + y) * W + x] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}
function bake() {  // drawing and erasing act on what is shown: fold the edits into the base image
  if (+$("dx").value || +$("dy").value || +$("angle").value) {
    state.base = edited();
    for (const id of ["dx", "dy", "angle"]) { $(id).value = 0; $(id + "-value").textContent = "0"; }
  }
}
function drawInput(image) {
  const [C, H, W] = state.shape, canvas = $("input"), ctx = canvas.getContext("2d");
  const data = ctx.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    for (let k = 0; k < 3; k++) data.data[4 * i + k] = 255 * image[(C === 3 ? k : 0) * H * W + i];
    data.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(W, H);
  tmp.getContext("2d").putImageData(data, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}
function inputChanged() {
  state.changedAt = performance.now();
  explore.idle = false;
  if (state.busy) { state.dirty = true; return; }
  redraw();
}

// ---------- drawing with the mouse or a finger ----------
function pixelAt(event) {
  const rect = $("input").getBoundingClientRect(), [, H, W] = state.shape;
  return [(event.clientY - rect.top) / rect.height * H - 0.5, (event.clientX - rect.left) / rect.width * W - 0.5];
}
function stamp(y, x) {
  const [C, H, W] = state.shape;
  if (document.querySelector("input[name=tool]:checked").value === "erase") {
    const half = +$("patch").value / 2;
    for (let c = 0; c < C; c++) for (let yy = Math.round(y - half); yy < Math.round(y + half); yy++)
      for (let xx = Math.round(x - half); xx < Math.round(x + half); xx++)
        if (yy >= 0 && yy < H && xx >= 0 && xx < W) state.base[(c * H + yy) * W + xx] = 0;
    return;
  }
  const radius = Math.max(1.2, H / 22);  // a pen about as wide as an MNIST stroke
  for (let yy = Math.floor(y - radius); yy <= Math.ceil(y + radius); yy++)
    for (let xx = Math.floor(x - radius); xx <= Math.ceil(x + radius); xx++) {
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      const d = Math.hypot(yy - y, xx - x) / radius, ink = Math.min(1, Math.max(0, 1.5 * (1 - d * d)));
      for (let c = 0; c < C; c++) {
        const i = (c * H + yy) * W + xx;
        state.base[i] = Math.max(state.base[i], ink);
      }
    }
}
function setupDrawing() {
  let last = null;
  const canvas = $("input");
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.shape) return;
    canvas.setPointerCapture(event.pointerId);
    bake();
    last = pixelAt(event);
    stamp(...last);
    inputChanged();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = pixelAt(event), steps = Math.max(1, Math.ceil(Math.hypot(next[0] - last[0], next[1] - last[1]) * 4));
    for (let s = 1; s <= steps; s++) stamp(last[0] + (next[0] - last[0]) * s / steps, last[1] + (next[1] - last[1]) * s / steps);
    last = next;
    inputChanged();
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

// ---------- the runs' stages ----------
function primary() { return state.runs[state.shown[0]]; }
function sameShape(run) { return run.input_shape.join() === state.shape.join(); }

function layoutFor(stage) {
  const [C, h, w] = stage.shape;
  if (stage.kind === "vector") {
    const cols = Math.ceil(Math.sqrt(C)), cell = Math.max(4, Math.min(24, Math.floor(COLUMN / cols)));
    return {vector: true, cols, cell, width: cols * cell, height: Math.ceil(C / cols) * cell, tiles: C};
  }
  const tiles = Math.min(C, MAX_TILES), gap = 3;
  const cols = Math.min(tiles, Math.max(1, Math.floor(Math.sqrt(tiles * 1.6))));
  const scale = Math.max(1, Math.floor((COLUMN / cols - gap) / w));
  return {vector: false, cols, scale, gap, tileW: w * scale, tileH: h * scale, tiles,
          width: cols * (w * scale + gap), height: Math.ceil(tiles / cols) * (h * scale + gap)};
}
function buildColumns() {
  const host = $("columns");
  host.textContent = "";
  for (const id of state.shown) {
    const run = state.runs[id], column = document.createElement("div");
    column.className = "column";
    column.id = `run-${id}`;
    column.innerHTML = `<h2></h2><div class="note"></div><div class="probs"></div>`;
    column.querySelector("h2").textContent = run.label;
    column.querySelector(".note").textContent = `${run.model} · ${run.dataset} · ${run.input_shape.join("×")}`;
    explore.layout[id] = {};
    for (const stage of run.stages) {
      const box = document.createElement("div"), layout = layoutFor(stage);
      box.className = "stage";
      const [C, h, w] = stage.shape, more = C > layout.tiles ? ` (first ${layout.tiles} of ${C} drawn)` : "";
      box.innerHTML = `<div class="title"><span></span><span class="note"></span></div>`;
      box.querySelector(".title span").textContent = stage.name;
      box.querySelector(".title .note").textContent =
        (stage.kind === "vector" ? `${C} units` : `${C} × ${h}×${w}${more}`) + (stage.rf.whole ? " · sees all" : ` · RF ${stage.rf.size}px`);
      const canvas = document.createElement("canvas");
      canvas.width = layout.width; canvas.height = layout.height;
      canvas.dataset.run = id; canvas.dataset.stage = stage.name;
      canvas.addEventListener("click", (event) => clickUnit(id, stage, layout, canvas, event));
      box.appendChild(canvas);
      column.appendChild(box);
      explore.layout[id][stage.name] = {layout, canvas};
    }
    host.appendChild(column);
  }
}
function tileOrigin(layout, channel) {
  return layout.vector ? [0, 0] : [(channel % layout.cols) * (layout.tileW + layout.gap),
                                   Math.floor(channel / layout.cols) * (layout.tileH + layout.gap)];
}
function drawStage(canvas, layout, stage, values, lo, hi) {
  const ctx = canvas.getContext("2d"), [C, h, w] = stage.shape, span = hi - lo || 1;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (layout.vector) {
    for (let i = 0; i < C; i++) {
      const [r, g, b] = VIRIDIS[Math.round(255 * (values[i] - lo) / span)];
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect((i % layout.cols) * layout.cell, Math.floor(i / layout.cols) * layout.cell, layout.cell - 1, layout.cell - 1);
    }
    return;
  }
  const image = ctx.createImageData(canvas.width, canvas.height);
  image.data.fill(255);
  for (let c = 0; c < layout.tiles; c++) {
    const [ox, oy] = tileOrigin(layout, c);
    for (let y = 0; y < h * layout.scale; y++) for (let x = 0; x < w * layout.scale; x++) {
      const v = values[(c * h + Math.floor(y / layout.scale)) * w + Math.floor(x / layout.scale)];
      const [r, g, b] = VIRIDIS[Math.round(255 * (v - lo) / span)], i = 4 * ((oy + y) * canvas.width + ox + x);
      image.data[i] = r; image.data[i + 1] = g; image.data[i + 2] = b;
    }
  }
  ctx.putImageData(image, 0, 0);
}
function drawProbs(id, probs) {
  const run = state.runs[id], host = document.querySelector(`#run-${id} .probs`);
  let best = 0;
  probs.forEach((p, i) => { if (p > probs[best]) best = i; });
  host.innerHTML = "";
  probs.forEach((p, i) => {
    const bar = document.createElement("div");
    bar.className = "bar" + (i === best ? " best" : "");
    bar.innerHTML = `<span></span><div><div class="fill"></div></div><span></span>`;
    bar.children[0].textContent = run.classes[i] ?? i;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.children[2].textContent = `${(100 * p).toFixed(1)} %`;
    host.appendChild(bar);
  });
}
async function redraw() {
  state.busy = true;
  state.dirty = false;
  const started = state.changedAt, input = edited();
  drawInput(input);
  explore.pending++;
  try {
    const runs = state.shown.filter((id) => sameShape(state.runs[id]));
    const results = await Promise.all(runs.map((id) => api("/api/forward", {run: id, input: encode(input)})));
    explore.lastSent = Array.from(input);
    results.forEach((result, k) => {
      const id = runs[k];
      explore.shown[id] = {};
      for (const stage of result.stages) {
        const values = decode(stage.values), spec = state.runs[id].stages.find((s) => s.name === stage.name);
        const {layout, canvas} = explore.layout[id][stage.name];
        drawStage(canvas, layout, spec, values, stage.min, stage.max);
        explore.shown[id][stage.name] = values;
      }
      explore.probs[id] = Array.from(decode(result.probs));
      drawProbs(id, explore.probs[id]);
    });
    for (const id of state.shown.filter((i) => !sameShape(state.runs[i])))
      document.querySelector(`#run-${id} .probs`).textContent =
        `takes ${state.runs[id].input_shape.join("×")} images; the input is ${state.shape.join("×")}`;
    const took = performance.now() - started;
    explore.timings.push(took);
    const sorted = [...explore.timings].sort((a, b) => a - b);
    $("timing").textContent = `redraw ${took.toFixed(0)} ms (median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms of ${sorted.length})`;
    if (state.unit) await showUnit(false);
    status(`${state.shown.length} of ${state.runs.length} run(s) shown`);
  } catch (err) {
    status(`could not compute the stages: ${err.message}`, true);
  } finally {
    explore.pending--;
    state.busy = false;
    if (state.dirty) redraw(); else explore.idle = true;
  }
}

// ---------- one unit ----------
function clickUnit(id, stage, layout, canvas, event) {
  const rect = canvas.getBoundingClientRect(), x = event.clientX - rect.left, y = event.clientY - rect.top;
  const [C, h, w] = stage.shape;
  let channel, row = 0, col = 0;
  if (layout.vector) {
    channel = Math.floor(y / layout.cell) * layout.cols + Math.floor(x / layout.cell);
  } else {
    const cx = Math.floor(x / (layout.tileW + layout.gap)), cy = Math.floor(y / (layout.tileH + layout.gap));
    channel = cy * layout.cols + cx;
    const [ox, oy] = tileOrigin(layout, channel);
    col = Math.floor((x - ox) / layout.scale);
    row = Math.floor((y - oy) / layout.scale);
    if (col >= w || row >= h || channel >= layout.tiles) return;  // the gap between tiles
  }
  if (channel >= C) return;
  state.unit = {run: id, stage: stage.name, channel, row, col};
  showUnit(true);
}
function unitCentre(id, stageName, channel, row, col) {  // page coordinates of a unit's pixel (for tests)
  const {layout, canvas} = explore.layout[id][stageName], rect = canvas.getBoundingClientRect();
  if (layout.vector) return [rect.left + (channel % layout.cols + 0.5) * layout.cell,
                             rect.top + (Math.floor(channel / layout.cols) + 0.5) * layout.cell];
  const [ox, oy] = tileOrigin(layout, channel);
  return [rect.left + ox + (col + 0.5) * layout.scale, rect.top + oy + (row + 0.5) * layout.scale];
}
explore.unitCentre = unitCentre;
explore.layoutShape = (id, stageName) => state.runs[id].stages.find((s) => s.name === stageName).shape;

async function showUnit(fresh) {
  const u = state.unit, run = state.runs[u.run];
  if (!sameShape(run)) return;
  let info;
  try {
    info = await api("/api/unit", {...u, input: encode(edited())});
  } catch (err) {
    status(`could not read the unit: ${err.message}`, true);
    return;
  }
  explore.unit = {run: u.run, ...info};
  drawBoxes(u.run, info);
  if (!fresh && $("unit").dataset.key === JSON.stringify(u)) { drawShifts(info.shifts); return; }
  $("unit").dataset.key = JSON.stringify(u);
  const [top, left, bottom, right] = info.input_box;
  const host = $("unit");
  host.innerHTML = `<h3></h3><div class="note rf"></div><h3>filter</h3><div class="filter"></div>
    <h3>top dataset examples</h3><div class="examples"></div><div class="note ex-note"></div>
    <h3>value as the input shifts</h3><canvas id="shift-chart" width="300" height="130"></canvas>`;
  host.querySelector("h3").textContent =
    `${run.label} · ${info.stage} · ${info.kind === "vector" ? "unit" : "channel"} ${info.channel}` +
    (info.kind === "vector" ? "" : ` at (${info.row}, ${info.col})`);
  host.querySelector(".rf").textContent = info.whole
    ? `sees the whole input${info.below ? ` and all of ${info.below}` : ""}`
    : `sees input rows ${top}–${bottom - 1}, columns ${left}–${right - 1} (field ${info.rf_size} px)` +
      (info.below ? `; reads ${info.below} rows ${info.below_box[0]}–${info.below_box[2] - 1}, ` +
                    `columns ${info.below_box[1]}–${info.below_box[3] - 1}` : "");
  drawFilter(host.querySelector(".filter"), info.filter, info.stage === run.stages[0].name);
  const examples = host.querySelector(".examples");
  for (const item of info.examples.items) {
    const figure = document.createElement("figure"), img = document.createElement("img");
    img.src = item.png;
    figure.appendChild(img);
    figure.appendChild(document.createTextNode(`${item.value.toFixed(2)} · ${item.label}`));
    figure.title = `validation image ${item.image}; the unit that fired sees rows ${item.window[0]}–${item.window[2] - 1}, columns ${item.window[1]}–${item.window[3] - 1}`;
    examples.appendChild(figure);
  }
  host.querySelector(".ex-note").textContent = info.examples.note;
  drawShifts(info.shifts);
}
function drawBoxes(id, info) {
  const overlay = $("input-overlay"), ctx = overlay.getContext("2d"), [, H, W] = state.shape;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const box = (context, [top, left, bottom, right], sx, sy, ox = 0, oy = 0) => {
    context.strokeStyle = "#ff4040"; context.lineWidth = 2;
    context.strokeRect(ox + left * sx, oy + top * sy, (right - left) * sx, (bottom - top) * sy);
  };
  if (!info.whole) box(ctx, info.input_box, overlay.width / W, overlay.height / H);
  const stage = state.runs[id].stages.find((s) => s.name === info.stage);
  const own = explore.layout[id][info.stage];
  if (!own.layout.vector) {  // mark the unit itself on its own tile
    const [ox, oy] = tileOrigin(own.layout, info.channel), s = own.layout.scale;
    box(own.canvas.getContext("2d"), [info.row, info.col, info.row + 1, info.col + 1], s, s, ox, oy);
  }
  if (info.below && !info.whole) {  // and the window it reads on every drawn tile of the stage below
    const below = explore.layout[id][info.below];
    if (!below.layout.vector) {
      for (let c = 0; c < below.layout.tiles; c++) {
        const [ox, oy] = tileOrigin(below.layout, c);
        box(below.canvas.getContext("2d"), info.below_box, below.layout.scale, below.layout.scale, ox, oy);
      }
    }
  }
  void stage;
}
function drawFilter(host, filter, rgb) {
  if (!filter) { host.textContent = "no single layer makes this channel (e.g. concatenated branches)"; return; }
  const values = decode(filter.values), [n, h, w] = filter.shape, bound = Math.max(Math.abs(filter.min), Math.abs(filter.max)) || 1;
  const shown = Math.min(n, 16), scale = Math.max(2, Math.floor(48 / Math.max(h, w)));
  const canvas = document.createElement("canvas");
  const tiles = rgb && n === 3 ? 1 : shown, step = w * scale + 3;
  const cols = Math.max(1, Math.min(tiles, Math.floor(310 / step)));
  canvas.width = cols * step; canvas.height = Math.ceil(tiles / cols) * (h * scale + 3);
  const ctx = canvas.getContext("2d");
  for (let t = 0; t < tiles; t++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let colour;
    if (rgb && n === 3) colour = [0, 1, 2].map((c) => 127.5 + 127.5 * values[(c * h + y) * w + x] / bound);
    else colour = diverging(values[(t * h + y) * w + x] / bound);
    ctx.fillStyle = `rgb(${colour.map(Math.round).join(",")})`;
    ctx.fillRect((t % cols) * step + x * scale, Math.floor(t / cols) * (h * scale + 3) + y * scale, scale, scale);
  }
  host.textContent = "";
  host.appendChild(canvas);
  const note = document.createElement("div");
  note.className = "note";
  note.textContent = `${filter.layer} weights, ${n} × ${h}×${w}` + (tiles < n ? ` (first ${tiles} input maps)` : "") +
    (rgb && n === 3 ? " as colour" : "; red positive, blue negative");
  host.appendChild(note);
}
function drawShifts(shifts) {
  const canvas = $("shift-chart");
  if (!canvas) return;
  const ctx = canvas.getContext("2d"), all = [...shifts.across, ...shifts.down];
  const lo = Math.min(...all), hi = Math.max(...all), span = hi - lo || 1, pad = 24, left = 40;
  const X = (i) => left + i / (shifts.shifts.length - 1) * (canvas.width - left - pad);
  const Y = (v) => canvas.height - pad - (v - lo) / span * (canvas.height - 2 * pad);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#607d8b"; ctx.font = "11px system-ui";
  shifts.shifts.forEach((s, i) => ctx.fillText(String(s), X(i) - 4, canvas.height - 8));
  ctx.fillText(hi.toFixed(2), 0, pad - 4); ctx.fillText(lo.toFixed(2), 0, canvas.height - pad + 12);
  for (const [key, colour] of [["across", "#1e88e5"], ["down", "#ef6c00"]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    shifts[key].forEach((v, i) => (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v))));
    ctx.stroke();
    ctx.fillStyle = colour;
    ctx.fillText(key === "across" ? "shifted →" : "shifted ↓", key === "across" ? canvas.width - 120 : canvas.width - 60, 12);
  }
}

// ---------- choosing images and runs ----------
async function loadImage(index) {
  const run = primary();
  try {
    const image = await api(`/api/image?run=${run.id}&index=${index}`);
    state.base = decode(image.values);
    $("image-index").value = image.index;
    $("image-caption").textContent = `validation image ${image.index}: ${image.class}`;
    inputChanged();
  } catch (err) {
    status(`could not load the image: ${err.message}`, true);
  }
}
function buildProbes() {
  const run = primary(), host = $("probes");
  host.textContent = "";
  if (run.images_error) { host.textContent = run.images_error; return; }
  for (const index of run.probe) {
    const button = document.createElement("button");
    button.textContent = run.classes[run.labels[index]] ?? run.labels[index];
    button.title = `validation image ${index}`;
    button.addEventListener("click", () => loadImage(index));
    host.appendChild(button);
  }
}
function buildRunsList() {
  const host = $("runs");
  host.textContent = "";
  for (const run of state.runs) {
    const item = document.createElement("label"), box = document.createElement("input");
    box.type = "checkbox"; box.checked = state.shown.includes(run.id); box.value = run.id;
    box.addEventListener("change", () => {
      state.shown = [...host.querySelectorAll("input:checked")].map((b) => +b.value);
      if (!state.shown.length) { box.checked = true; state.shown = [run.id]; }
      choose();
    });
    item.appendChild(box);
    item.appendChild(document.createTextNode(` ${run.label} (${run.model})`));
    item.title = run.dir;
    host.appendChild(item);
  }
}
function choose() {  // the shown runs changed: the input takes the first one's shape
  const run = primary(), shape = run.input_shape;
  if (state.unit && !state.shown.includes(state.unit.run)) state.unit = null;
  if (!state.shape || state.shape.join() !== shape.join()) {
    state.shape = shape;
    state.base = new Float32Array(shape[0] * shape[1] * shape[2]);
    state.unit = null;
    $("image-index").max = Math.max(0, run.images - 1);
    buildProbes();
    buildColumns();
    if (run.images) loadImage(0); else inputChanged();
  } else {
    buildColumns();
    inputChanged();
  }
  document.querySelector("input[value=draw]").disabled = !run.drawable;
  if (!run.drawable) document.querySelector("input[value=erase]").checked = true;
}

async function main() {
  try {
    state.runs = await api("/api/runs");
  } catch (err) {
    status(`could not list the runs: ${err.message}`, true);
    return;
  }
  state.shown = state.runs.slice(0, 2).map((run) => run.id);
  buildRunsList();
  setupDrawing();
  $("clear").addEventListener("click", () => { bake(); state.base.fill(0); inputChanged(); });
  $("prev").addEventListener("click", () => loadImage(Math.max(0, +$("image-index").value - 1)));
  $("next").addEventListener("click", () => loadImage(Math.min(primary().images - 1, +$("image-index").value + 1)));
  $("image-index").addEventListener("change", () => loadImage(Math.max(0, Math.min(primary().images - 1, +$("image-index").value || 0))));
  for (const id of ["dx", "dy", "angle", "patch"]) $(id).addEventListener("input", () => {
    $(id + "-value").textContent = $(id).value;
    if (id !== "patch") inputChanged();
  });
  $("reset-edits").addEventListener("click", () => {
    for (const id of ["dx", "dy", "angle"]) { $(id).value = 0; $(id + "-value").textContent = "0"; }
    inputChanged();
  });
  choose();
  explore.ready = true;
}
main();
