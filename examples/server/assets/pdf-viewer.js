// The PDF viewer of both pages: PDF.js (vendored, same origin), loaded on the first PDF opened.
// Pages are drawn only near the viewport and dropped when far away, so a long PDF keeps a few
// canvases, not one per page.
"use strict";

// Its names stay inside: the pages' scripts share one global scope (customer.js has a `refresh`).
const openPdf = (() => {
  const PDFJS = "/assets/vendor/pdfjs/";
  // Canvases alive at once, whatever the zoom: a phone's memory is the limit, not the PDF's length.
  const MAX_CANVASES = 8;
  const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];

  let pdfjsModule = null; // the imported PDF.js, once loaded
  let viewer = null;      // the open viewer's state

  function pdfDialog() {
    let dialog = document.getElementById("pdf-viewer");
    if (dialog) return dialog;
    const page = el("input", { id: "pdf-page", class: "page-input", type: "number", inputmode: "numeric",
      min: "1", value: "1", "aria-describedby": "pdf-count" });
    dialog = el("div", { id: "pdf-viewer", class: "modal viewer hidden", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "pdf-name" },
    el("div", { class: "panel" },
      el("div", { class: "toolbar" },
        el("h2", { id: "pdf-name", class: "pdf-name" }),
        // The page is checked here, with a message that says which pages exist.
        el("form", { id: "pdf-jump", class: "pdf-jump", novalidate: "" },
          el("label", { for: "pdf-page" }, t("pdf.page")), page,
          el("span", { id: "pdf-count" }),
          el("button", { type: "submit", id: "pdf-go", class: "secondary" }, t("pdf.go"))),
        el("span", { class: "pdf-zoom" },
          el("button", { type: "button", id: "pdf-zoom-out", class: "secondary", "aria-label": t("pdf.zoom_out") }, "−"),
          el("button", { type: "button", id: "pdf-zoom-in", class: "secondary", "aria-label": t("pdf.zoom_in") }, "+")),
        el("button", { type: "button", id: "pdf-done" }, t("pdf.done"))),
      el("div", { id: "pdf-message", class: "pdf-message", role: "status" }),
      el("div", { id: "pdf-scroll", class: "pdf-scroll", tabindex: "0", role: "region", "aria-label": t("pdf.pages") })));
    document.body.append(dialog);
    dialog.querySelector("#pdf-jump").addEventListener("submit", (e) => { e.preventDefault(); jump(); });
    dialog.querySelector("#pdf-zoom-in").addEventListener("click", () => zoomBy(1));
    dialog.querySelector("#pdf-zoom-out").addEventListener("click", () => zoomBy(-1));
    dialog.querySelector("#pdf-done").addEventListener("click", () => closeDialog(dialog));
    dialog.querySelector("#pdf-scroll").addEventListener("scroll", () => {
      if (viewer && !viewer.tracking) {
        viewer.tracking = true;
        requestAnimationFrame(trackPage);
      }
    });
    return dialog;
  }

  async function loadPdfjs() {
    if (!pdfjsModule) {
      pdfjsModule = await import(PDFJS + "pdf.min.mjs");
      pdfjsModule.GlobalWorkerOptions.workerSrc = PDFJS + "pdf.worker.min.mjs";
    }
    return pdfjsModule;
  }

  function pdfMessage(text, isError) {
    const box = document.getElementById("pdf-message");
    box.textContent = text;
    box.className = "pdf-message" + (isError ? " error" : "");
  }

  // Opens `doc` (a document view of kind "pdf") in the viewer.
  async function openPdf(doc) {
    const dialog = pdfDialog();
    if (viewer) releaseViewer();
    const mine = viewer = { doc, pages: [], zoom: 2, tracking: false, rendered: new Map(), current: 1 };
    document.getElementById("pdf-name").textContent = doc.name;
    document.getElementById("pdf-count").textContent = t("pdf.of", { pages: doc.pages });
    document.getElementById("pdf-page").max = doc.pages;
    document.getElementById("pdf-page").value = 1;
    document.getElementById("pdf-scroll").replaceChildren();
    document.getElementById("pdf-zoom-in").disabled = false;
    document.getElementById("pdf-zoom-out").disabled = false;
    pdfMessage(t("pdf.opening"));
    openDialog(dialog, document.getElementById("pdf-done"), releaseViewer);
    try {
      const pdfjs = await loadPdfjs();
      const headers = asCustomer() ? { "x-collab-as": "customer" } : {};
      mine.task = pdfjs.getDocument({ url: doc.url, httpHeaders: headers, isEvalSupported: false,
        cMapUrl: PDFJS + "cmaps/", cMapPacked: true, standardFontDataUrl: PDFJS + "standard_fonts/",
        useWasm: false, enableXfa: false });
      const pdf = await mine.task.promise;
      if (viewer !== mine) return;
      mine.pdf = pdf;
      document.getElementById("pdf-count").textContent = t("pdf.of", { pages: pdf.numPages });
      document.getElementById("pdf-page").max = pdf.numPages;
      const first = await pdf.getPage(1);
      if (viewer !== mine) return;
      // Every page is laid out at the first page's size until drawn: scrolling and jumping need
      // the boxes before the pages are read.
      mine.base = first.getViewport({ scale: 1 });
      layout(mine);
      pdfMessage("");
    } catch (error) {
      // This browser cannot draw it (an older one, say): the file itself still opens.
      if (viewer === mine) {
        pdfMessage(t("pdf.cannot_show", { message: error.message }), true);
        document.getElementById("pdf-message").append(" ",
          el("a", { href: doc.url, target: "_blank", rel: "noopener" }, t("pdf.open_file")));
      }
    }
  }

  // The scale at which the page fits the viewer's width, times the zoom step.
  function scaleOf(state) {
    const width = document.getElementById("pdf-scroll").clientWidth - 16;
    return (width / state.base.width) * ZOOMS[state.zoom];
  }

  function layout(state) {
    const scroll = document.getElementById("pdf-scroll");
    for (const canvas of state.rendered.values()) canvas.remove();
    state.rendered.clear();
    if (state.observer) state.observer.disconnect();
    const scale = scaleOf(state);
    const boxes = [];
    for (let n = 1; n <= state.pdf.numPages; n++) {
      const box = el("div", { class: "pdf-page", "data-page": n, role: "img", "aria-label": t("pdf.page_n", { n }) });
      box.style.width = `${Math.round(state.base.width * scale)}px`;
      box.style.height = `${Math.round(state.base.height * scale)}px`;
      boxes.push(box);
    }
    scroll.replaceChildren(...boxes);
    state.pages = boxes;
    state.scale = scale;
    // The pages within a screen above and below the visible one are "near": drawn ahead of the
    // reader.
    state.near = new Set();
    state.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const n = Number(entry.target.dataset.page);
        if (entry.isIntersecting) state.near.add(n);
        else state.near.delete(n);
      }
      drawNearPages(state);
    }, { root: scroll, rootMargin: "100% 0px" });
    for (const box of boxes) state.observer.observe(box);
  }

  // Draws the near pages closest to the current one, within the bound, and drops the others.
  function drawNearPages(state) {
    if (viewer !== state) return;
    const distance = (n) => Math.abs(n - state.current);
    const wanted = [...state.near].sort((a, b) => distance(a) - distance(b)).slice(0, MAX_CANVASES);
    for (const n of [...state.rendered.keys()]) if (!wanted.includes(n)) release(state, n);
    for (const n of wanted) draw(state, n);
  }

  async function draw(state, n) {
    if (viewer !== state || state.rendered.has(n)) return;
    const box = state.pages[n - 1];
    const canvas = el("canvas", { "aria-hidden": "true" });
    state.rendered.set(n, canvas);
    // Where each page is, for whoever looks at the DOM (the browser test does).
    box.dataset.state = "loading";
    try {
      const page = await state.pdf.getPage(n);
      if (state.rendered.get(n) !== canvas) return;
      const viewport = page.getViewport({ scale: state.scale });
      // Sharp on high-density screens, within a pixel budget per canvas.
      const ratio = Math.min(window.devicePixelRatio || 1, Math.sqrt(16e6 / (viewport.width * viewport.height)));
      canvas.width = Math.floor(viewport.width * ratio);
      canvas.height = Math.floor(viewport.height * ratio);
      box.style.width = `${Math.round(viewport.width)}px`;
      box.style.height = `${Math.round(viewport.height)}px`;
      box.append(canvas);
      box.dataset.state = "drawing";
      const task = page.render({ canvas, viewport, transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0] });
      canvas.task = task;
      await task.promise;
      if (state.rendered.get(n) === canvas) {
        box.classList.add("drawn");
        box.dataset.state = "drawn";
      }
    } catch (error) {
      if (error && error.name === "RenderingCancelledException") return;
      if (state.rendered.get(n) === canvas) pdfMessage(t("pdf.page_cannot_show", { n, message: error.message }), true);
    }
  }

  function release(state, n) {
    const canvas = state.rendered.get(n);
    if (!canvas) return;
    state.rendered.delete(n);
    if (canvas.task) canvas.task.cancel();
    // A zero-sized canvas gives its memory back at once, not at the next collection.
    canvas.width = canvas.height = 0;
    canvas.remove();
    state.pages[n - 1].classList.remove("drawn");
    state.pages[n - 1].dataset.state = "released";
  }

  // The current page is the one across the upper third of the viewer.
  function trackPage() {
    const state = viewer;
    if (!state) return;
    state.tracking = false;
    if (!state.pages.length) return;
    const scroll = document.getElementById("pdf-scroll");
    const line = scroll.scrollTop + scroll.clientHeight / 3;
    let n = 1;
    for (const box of state.pages) {
      if (box.offsetTop > line) break;
      n = Number(box.dataset.page);
    }
    state.current = n;
    const input = document.getElementById("pdf-page");
    if (document.activeElement !== input) input.value = n;
    drawNearPages(state);
  }

  function showPageNumber(state, n) {
    const scroll = document.getElementById("pdf-scroll");
    scroll.scrollTop = state.pages[n - 1].offsetTop - scroll.offsetTop - 8;
    state.current = n;
    document.getElementById("pdf-page").value = n;
  }

  // Jumps to the page in the box; a number out of range is refused and the box corrected.
  function jump() {
    const state = viewer;
    if (!state || !state.pages.length) return;
    const input = document.getElementById("pdf-page");
    const count = state.pages.length;
    const n = Math.round(Number(input.value));
    if (!Number.isFinite(n) || n < 1 || n > count) {
      input.value = Math.min(Math.max(1, Number.isFinite(n) ? n : state.current), count);
      pdfMessage(t("pdf.no_such_page", { n: input.value === "" ? "" : n, count }), true);
      return;
    }
    pdfMessage("");
    showPageNumber(state, n);
  }

  function zoomBy(step) {
    const state = viewer;
    if (!state || !state.pages.length) return;
    const zoom = Math.min(Math.max(0, state.zoom + step), ZOOMS.length - 1);
    if (zoom === state.zoom) return;
    const page = state.current;
    state.zoom = zoom;
    layout(state);
    showPageNumber(state, page);
    document.getElementById("pdf-zoom-in").disabled = zoom === ZOOMS.length - 1;
    document.getElementById("pdf-zoom-out").disabled = zoom === 0;
  }

  function releaseViewer() {
    const state = viewer;
    if (!state) return;
    viewer = null;
    if (state.observer) state.observer.disconnect();
    for (const n of [...state.rendered.keys()]) release(state, n);
    if (state.task) state.task.destroy();
    document.getElementById("pdf-scroll").replaceChildren();
  }

  return openPdf;
})();
