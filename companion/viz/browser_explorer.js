/* An explorer that runs the book's decoder in the reader's browser (companion.viz.browser).
 *
 * The output of browser_explorer() holds a JSON script element of class "cbe-data" with the
 * decoder's weights (16-bit integers with one scale per row, base64) and this script,
 * which finds its own output, decodes the weights once, and builds the controls:
 *   "map":       the 2-D code space with the held-out codes; the pointer picks z; with two
 *                ends A and B, a slider walks the segment between them (z = (1 − t) A + t B);
 *   "traversal": one slider per chosen coordinate of z, all live, from a chosen start code.
 * Every move calls decode(z), a plain forward pass (matrix products and the model's activations),
 * and paints the image. Nothing is fetched. Unpacking the weights is asynchronous (the browser's
 * DecompressionStream), so an output's element gets its `companionExplorer` once the decoder is
 * ready; the page's tests call its decode(z), which returns the pixels in [0, 1]. */
(function () {
  "use strict";
  const VERSION = 1;                              // of the data format: a newer script replaces an older one
  const lib = window.companionBrowserExplorer || (window.companionBrowserExplorer = {});

  if (lib.version !== VERSION) {
    const ACT = {
      relu: (x) => (x > 0 ? x : 0),
      sigmoid: (x) => 1 / (1 + Math.exp(-x)),
      tanh: Math.tanh,
      elu: (x) => (x > 0 ? x : Math.expm1(x)),
      identity: (x) => x,
    };
    // matplotlib's tab10, the colours of the book's scatter plots of codes
    const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    const bytes = (b64) => {
      const s = atob(b64), u = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
      return u.buffer;
    };

    const el = (tag, props = {}, style = {}) => {
      const e = Object.assign(document.createElement(tag), props);
      Object.assign(e.style, style);
      return e;
    };

    /* The 16-bit weights: deflated byte planes (all low bytes, then all high bytes). */
    const int16s = async (b64, n) => {
      if (typeof DecompressionStream === "undefined") {
        throw new Error("this browser cannot unpack the weights (it has no DecompressionStream)");
      }
      const stream = new Blob([bytes(b64)]).stream().pipeThrough(new DecompressionStream("deflate"));
      const planes = new Uint8Array(await new Response(stream).arrayBuffer());
      const q = new Int16Array(n);
      for (let i = 0; i < n; i++) q[i] = (planes[n + i] << 8) | planes[i];    // Int16Array keeps the sign
      return q;
    };

    /* f_θ: weights w = q · s_row (stored as float32, as the Python twin does), then for each
       layer h ← act(W h + b), then the output map (sigmoid for a Bernoulli decoder's mean). */
    lib.network = async function (data) {
      const layers = await Promise.all(data.layers.map(async (L) => {
        const q = await int16s(L.q, L.rows * L.cols), s = new Float32Array(bytes(L.scale));
        const w = new Float32Array(q.length);
        for (let r = 0; r < L.rows; r++) {
          for (let c = 0; c < L.cols; c++) w[r * L.cols + c] = q[r * L.cols + c] * s[r];
        }
        return { rows: L.rows, cols: L.cols, w, b: new Float32Array(bytes(L.bias)), act: ACT[L.act] };
      }));
      const out = ACT[data.out];
      return function decode(z) {
        if (z.length !== data.codeSize) throw new Error(`decode expects ${data.codeSize} numbers, got ${z.length}`);
        let h = Float64Array.from(z);
        for (const L of layers) {
          const next = new Float64Array(L.rows);
          for (let r = 0; r < L.rows; r++) {
            let acc = L.b[r];
            const base = r * L.cols;
            for (let c = 0; c < L.cols; c++) acc += L.w[base + c] * h[c];
            next[r] = L.act(acc);
          }
          h = next;
        }
        return h.map(out);
      };
    };

    /* An image canvas at the image's own resolution, shown `scale` times larger, pixels crisp. */
    const imageCanvas = (shape, scale) => {
      const [, H, W] = shape;
      return el("canvas", { width: W, height: H },
                { width: `${W * scale}px`, height: `${H * scale}px`, imageRendering: "pixelated",
                  border: "1px solid #bbb", background: "#fff" });
    };

    /* Paint pixels (C·H·W values in [0, 1]): one channel as dark ink on white, three as RGB. */
    const paint = (canvas, pixels, shape) => {
      const [C, H, W] = shape, n = H * W, ctx = canvas.getContext("2d");
      const img = ctx.createImageData(W, H);
      const at = (i) => Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
      for (let i = 0; i < n; i++) {
        const rgb = C === 1 ? [255 - at(i), 255 - at(i), 255 - at(i)] : [at(i), at(n + i), at(2 * n + i)];
        img.data.set([...rgb, 255], 4 * i);
      }
      ctx.putImageData(img, 0, 0);
    };

    const slider = (name, lo, hi, step, value, onInput) => {
      const row = el("label", {}, { display: "flex", alignItems: "center", gap: "0.5em", margin: "2px 0" });
      const input = el("input", { type: "range", min: lo, max: hi, step, value }, { width: "14em" });
      const readout = el("span", {}, { fontFamily: "monospace", minWidth: "4em" });
      const show = () => { readout.textContent = Number(input.value).toFixed(2); };
      input.addEventListener("input", () => { show(); onInput(Number(input.value)); });
      row.append(el("span", { textContent: name }, { minWidth: "9em" }), input, readout);
      show();
      return { row, input, set: (v) => { input.value = v; show(); } };
    };

    /* The 2-D map: scatter of codes coloured by label; the pointer (mouse, pen or touch) picks z. */
    const mapView = (data, decode, inst) => {
      const size = 280, [x0, x1] = data.xRange, [y0, y1] = data.yRange;
      const toPx = (z) => [(z[0] - x0) / (x1 - x0) * size, (y1 - z[1]) / (y1 - y0) * size];
      const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
      // a point of the map's square: the export was checked there, so z never leaves it
      const toZ = (px, py) => [clamp(x0 + px / size * (x1 - x0), x0, x1), clamp(y1 - py / size * (y1 - y0), y0, y1)];
      const map = el("canvas", { width: size, height: size, tabIndex: 0,
                                 title: "drag (or hover with a mouse) to pick a code; arrow keys move it" },
                     { border: "1px solid #bbb", background: "#fff", cursor: "crosshair", touchAction: "none" });
      const dots = el("canvas", { width: size, height: size });      // the scatter, drawn once
      const g = dots.getContext("2d");
      const points = data.points ? new Float32Array(bytes(data.points)) : new Float32Array(0);
      const labels = data.labels ? new Uint8Array(bytes(data.labels)) : null;
      g.globalAlpha = 0.55;
      for (let i = 0; i < points.length / 2; i++) {
        const [px, py] = toPx([points[2 * i], points[2 * i + 1]]);
        g.fillStyle = labels ? PALETTE[labels[i] % 10] : "#1f77b4";
        g.fillRect(px - 1.5, py - 1.5, 3, 3);
      }
      const image = imageCanvas(data.imageShape, data.scale);
      const readout = el("div", {}, { fontFamily: "monospace", margin: "4px 0" });
      let z = data.start.slice(), dragging = false, moving = "z", t = 0.5, onSegment = Boolean(data.ends);
      const ends = data.ends ? data.ends.map((e) => e.slice()) : null;
      const thumbs = ends ? ends.map(() => imageCanvas(data.imageShape, Math.max(1, Math.round(data.scale / 2)))) : [];

      const marker = (ctx, p, style, text) => {
        const [px, py] = toPx(p);
        ctx.strokeStyle = style; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(px, py, 6, 0, 2 * Math.PI); ctx.stroke();
        if (text) { ctx.fillStyle = style; ctx.font = "bold 13px sans-serif"; ctx.fillText(text, px + 8, py - 8); }
      };
      const update = (endsMoved = false) => {
        const ctx = map.getContext("2d");
        ctx.clearRect(0, 0, size, size);
        ctx.drawImage(dots, 0, 0);
        if (ends) {
          const [a, b] = ends.map(toPx);
          ctx.setLineDash([4, 4]); ctx.strokeStyle = "#444"; ctx.lineWidth = 1.5;
          ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke(); ctx.setLineDash([]);
          marker(ctx, ends[0], "#444", "A"); marker(ctx, ends[1], "#444", "B");
          if (endsMoved) ends.forEach((e, i) => paint(thumbs[i], decode(e), data.imageShape));
        }
        marker(ctx, z, "#000", "");
        paint(image, decode(z), data.imageShape);
        readout.textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})` +
          (onSegment ? `, ${t.toFixed(2)} of the way from A to B` : "");
      };
      const along = () => ends[0].map((a, j) => (1 - t) * a + t * ends[1][j]);
      const place = (p) => {              // the pointer or the keys put z, or the chosen end, at p
        if (moving === "z") { z = p; onSegment = false; update(); }
        else { ends[moving === "A" ? 0 : 1] = p; z = along(); onSegment = true; update(true); }
      };
      const pick = (e) => {
        const r = map.getBoundingClientRect();
        place(toZ((e.clientX - r.left) * size / r.width, (e.clientY - r.top) * size / r.height));
      };
      map.addEventListener("pointerdown", (e) => { dragging = true; map.setPointerCapture(e.pointerId); pick(e); });
      map.addEventListener("pointermove", (e) => { if (dragging || (e.pointerType === "mouse" && moving === "z")) pick(e); });
      for (const type of ["pointerup", "pointercancel"]) map.addEventListener(type, () => { dragging = false; });
      map.addEventListener("keydown", (e) => {
        const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
        if (!step) return;
        e.preventDefault();
        const from = moving === "z" ? z : ends[moving === "A" ? 0 : 1];
        place(toZ(...toPx([from[0] + step[0] * (x1 - x0) / 50, from[1] + step[1] * (y1 - y0) / 50])));
      });

      const panel = el("div", {}, { display: "flex", flexDirection: "column", gap: "4px" });
      if (ends) {
        const choice = el("div", {}, { display: "flex", gap: "0.8em", alignItems: "center" });
        choice.append("the pointer moves:");
        const group = `cbe-${Math.random().toString(36).slice(2)}`;
        for (const [value, text] of [["z", "z"], ["A", "end A"], ["B", "end B"]]) {
          const radio = el("input", { type: "radio", name: group, value, checked: value === "z" });
          radio.addEventListener("change", () => { moving = value; });
          const label = el("label", {}, { display: "inline-flex", gap: "0.2em" });
          label.append(radio, text);
          choice.append(label);
        }
        const walk = slider("from A (0) to B (1)", 0, 1, 0.01, t, (v) => { t = v; z = along(); onSegment = true; update(); });
        z = along();
        const strip = el("div", {}, { display: "flex", alignItems: "center", gap: "6px" });
        strip.append("A", thumbs[0], image, thumbs[1], "B");
        panel.append(choice, walk.row, strip);
        inst.slider = walk.input;
      } else {
        panel.append(image);
      }
      panel.append(readout);
      const legend = el("div", {}, { fontSize: "0.85em" });
      if (labels) {
        legend.append("colour = label: ");
        for (const d of [...new Set(labels)].sort((a, b) => a - b)) {
          legend.append(el("b", { textContent: ` ${d}` }, { color: PALETTE[d % 10] }));
        }
      }
      const left = el("div");
      left.append(map, legend);
      const body = el("div", {}, { display: "flex", gap: "16px", alignItems: "flex-start", flexWrap: "wrap" });
      body.append(left, panel);
      Object.assign(inst, { map, image, code: () => z.slice(), set: (p) => { z = p.slice(); onSegment = false; update(); } });
      update(true);
      return body;
    };

    /* Traversal: one slider per coordinate, all live, starting from one of the start codes. */
    const traversalView = (data, decode, inst) => {
      const image = imageCanvas(data.imageShape, data.scale);
      const original = data.images ? imageCanvas(data.imageShape, data.scale) : null;
      const originals = data.images ? data.images.map((b) => Array.from(new Uint8Array(bytes(b)), (v) => v / 255)) : null;
      let z = data.starts[0].slice();
      const update = () => { paint(image, decode(z), data.imageShape); };
      const sliders = data.dims.map((j, i) => slider(data.names[i], data.span[0], data.span[1], 0.01, z[j],
                                                     (v) => { z[j] = v; update(); }));
      const choose = (s) => {
        z = data.starts[s].slice();
        data.dims.forEach((j, i) => sliders[i].set(z[j]));
        if (original) paint(original, originals[s], data.imageShape);
        update();
      };
      const starts = el("div", {}, { display: "flex", gap: "6px", alignItems: "center", flexWrap: "wrap" });
      if (data.starts.length > 1) {
        starts.append("start from:");
        data.starts.forEach((code, s) => {
          const button = el("button", { type: "button", title: `start ${s + 1}` }, { padding: "2px", cursor: "pointer" });
          const thumb = imageCanvas(data.imageShape, 1);
          paint(thumb, originals ? originals[s] : decode(code), data.imageShape);
          button.append(thumb);
          button.addEventListener("click", () => choose(s));
          starts.append(button);
        });
      }
      const pictures = el("div", {}, { display: "flex", gap: "8px", alignItems: "center" });
      if (original) pictures.append(original, "→");
      pictures.append(image);
      const controls = el("div");
      sliders.forEach((s) => controls.append(s.row));
      const body = el("div", {}, { display: "flex", gap: "16px", alignItems: "flex-start", flexWrap: "wrap" });
      const left = el("div");
      left.append(starts, controls);
      body.append(left, pictures);
      Object.assign(inst, { image, sliders: sliders.map((s) => s.input), code: () => z.slice(),
                            set: (p) => { z = p.slice(); data.dims.forEach((j, i) => sliders[i].set(z[j])); update(); } });
      choose(0);
      return body;
    };

    lib.mount = async function (root, data) {
      const decode = await lib.network(data);
      const inst = { root, kind: data.kind, codeSize: data.codeSize, imageShape: data.imageShape,
                     decode: (z) => Array.from(decode(z)) };
      const box = el("div", {}, { margin: "0.5em 0" });
      if (data.caption) box.append(el("div", { textContent: data.caption }, { fontWeight: "bold", marginBottom: "4px" }));
      box.append(data.kind === "map" ? mapView(data, decode, inst) : traversalView(data, decode, inst));
      box.append(el("div", { textContent: "Decoded in this browser from a copy of the decoder's weights: no Python behind the page, nothing fetched." },
                    { fontSize: "0.8em", color: "#666", marginTop: "4px" }));
      const fallback = root.querySelector(".cbe-fallback");
      if (fallback) fallback.remove();
      root.append(box);
      root.companionExplorer = inst;                 // what the page's tests reach, through the page
      return inst;
    };

    /* Start an output once: decode its data, build it, or say why it could not start. */
    lib.start = function (root) {
      if (root.dataset.mounted) return;
      root.dataset.mounted = "1";
      const data = JSON.parse(root.querySelector("script.cbe-data").textContent);
      lib.mount(root, data).catch((error) => {
        const fallback = root.querySelector(".cbe-fallback");
        if (fallback) fallback.textContent = `The explorer could not start: ${error.message}.`;
        throw error;
      });
    };
    lib.version = VERSION;
  }

  /* The output this script belongs to. A host that runs the script somewhere else (VS Code,
     the classic notebook) leaves currentScript outside any output: then start every output on
     the page that has not started. */
  const script = document.currentScript;
  const own = script && script.closest(".companion-browser-explorer");
  const roots = own ? [own] : Array.from(document.querySelectorAll(".companion-browser-explorer"));
  roots.forEach(lib.start);
})();
