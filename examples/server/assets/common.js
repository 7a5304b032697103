// Shared by the agent console and the customer page.
"use strict";

// The customer page says so on every request, so that a browser signed in as an agent too
// still acts as the customer there.
const asCustomer = () => document.body.dataset.role === "customer";

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (asCustomer()) options.headers["x-collab-as"] = "customer";
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.code = data && data.error && data.error.code;
    error.field = data && data.error && data.error.field;
    // The room an error names: the survivor of a merge, or a customer's other room.
    error.room = data && data.error && data.error.room;
    error.status = response.status;
    throw error;
  }
  return data;
}

// The page's words: one JSON file per language, `assets/i18n/<tag>.json`, loaded by
// `loadStrings` before the page renders. `t(key, { name })` fills in `{name}` (once: a value that
// spells a placeholder stays text); a key the file lacks shows as itself, so that it is noticed.
let strings = {};
let pageLocale = "en";

async function loadStrings(locale) {
  const response = await fetch(`/assets/i18n/${encodeURIComponent(locale)}.json`);
  if (!response.ok) throw new Error(`no strings file for ${locale}`);
  strings = await response.json();
  pageLocale = locale;
  document.documentElement.lang = locale;
  document.documentElement.dir = strings.dir === "rtl" ? "rtl" : "ltr";
  // The page's own markup names its strings: data-i18n for the text, data-i18n-<attribute>.
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attribute of ["placeholder", "aria-label", "title"]) {
    for (const node of document.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(node.getAttribute(`data-i18n-${attribute}`)));
    }
  }
}

function t(key, params) {
  const text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    (params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole));
}

// A moment in the page's language: the time alone today, with the date before.
function formatTime(at) {
  const when = new Date(at);
  if (Number.isNaN(when.getTime())) return "";
  const today = when.toDateString() === new Date().toDateString();
  const format = today ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" };
  return new Intl.DateTimeFormat(pageLocale, format).format(when);
}

// Who wrote an item, and when.
function byLine(event) {
  return el("div", { class: "who" }, t(`by.${event.by}`), " · ", el("time", { datetime: event.at }, formatTime(event.at)));
}

// The line of a room event that is no message or document, from its type and the page's strings.
function systemText(event) {
  switch (event.type) {
    case "room_renamed": return t("event.room_renamed", { name: event.name || "" });
    case "customer_invited": return t("event.customer_invited", { channel: t(`channel.${event.channel}`) });
    case "timed_out": case "reactivated": case "closed": case "customer_joined": case "room_erased":
    case "room_merged":
      return t(`event.${event.type}`);
    default: return null;
  }
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// Open dialogs, innermost last: Escape closes the innermost, Tab stays inside it, and closing
// gives the focus back to what opened it.
const dialogs = [];

function openDialog(dialog, focus, onClose) {
  if (dialogs.some((d) => d.dialog === dialog)) return;
  dialogs.push({ dialog, opener: document.activeElement, onClose });
  dialog.classList.remove("hidden");
  (focus || focusables(dialog)[0] || dialog).focus();
}

function closeDialog(dialog) {
  const index = dialogs.findIndex((d) => d.dialog === dialog);
  dialog.classList.add("hidden");
  if (index < 0) return;
  const [open] = dialogs.splice(index, 1);
  if (open.onClose) open.onClose();
  if (open.opener && open.opener.isConnected) open.opener.focus();
}

function focusables(root) {
  return [...root.querySelectorAll("a[href], button, input, select, textarea, [tabindex]")]
    .filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0);
}

document.addEventListener("keydown", (e) => {
  const top = dialogs[dialogs.length - 1];
  if (!top) return;
  if (e.key === "Escape") {
    e.preventDefault();
    closeDialog(top.dialog);
  } else if (e.key === "Tab") {
    const all = focusables(top.dialog);
    if (!all.length) return;
    const first = all[0];
    const last = all[all.length - 1];
    if (!top.dialog.contains(document.activeElement)) {
      e.preventDefault();
      first.focus();
    } else if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  }
});

function showLightbox(url, name) {
  const img = document.getElementById("lightbox-image");
  img.src = url;
  img.alt = name;
  document.getElementById("lightbox-name").textContent = name;
  openDialog(document.getElementById("lightbox"), document.getElementById("lightbox-close"));
}

// The enlarged picture, over the page: the same dialog on both pages.
function setupLightbox() {
  const box = el("div", { id: "lightbox", class: "modal hidden", role: "dialog", "aria-modal": "true",
    "aria-labelledby": "lightbox-name" },
  el("div", { class: "lightbox-panel" },
    el("div", { class: "toolbar" },
      el("h2", { id: "lightbox-name", class: "pdf-name" }),
      el("button", { id: "lightbox-close", type: "button" }, t("lightbox.close"))),
    el("img", { id: "lightbox-image", alt: "" })));
  document.body.append(box);
  // A click beside the picture closes it too, as people expect of a popup.
  box.addEventListener("click", (e) => { if (e.target === box) closeDialog(box); });
  document.getElementById("lightbox-close").addEventListener("click", () => closeDialog(box));
}

// Whether the shown timeline has said that the customer joined: a join link opened again adds
// another "joined" event, which says nothing new. Reset when another room is shown.
const timelineShown = { joined: false };

// One item of the content area, or null; `me` is "agent" or "customer".
function renderEvent(event, me) {
  if (event.type === "message_posted") {
    return el("div", { class: "item" + (event.by === me ? " mine" : ""), "data-seq": event.seq },
      byLine(event), el("div", { class: "text" }, event.text));
  }
  if (event.type === "document_shared") {
    const doc = event.document;
    let body;
    if (doc.kind === "image") {
      // The box is sized from the known dimensions before the bytes arrive, so scrolling to
      // the newest item lands on the whole picture. It shows the server's thumbnail; the popup
      // loads the original. A thumbnail that fails (none can be made, e.g. an image too large to
      // decode safely) shows a neutral picture icon, never the original.
      const icon = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'><rect width='24' height='24' fill='#e3e8f0'/>"
        + "<path d='M5 17l4-5 3 3.5 2-2.5 5 4z' fill='#8a94a3'/><circle cx='15.5' cy='8.5' r='1.8' fill='#8a94a3'/></svg>";
      const image = el("img", { class: "thumb", alt: "", width: doc.width, height: doc.height,
        onerror: () => { if (!image.src.startsWith("data:")) image.src = "data:image/svg+xml," + encodeURIComponent(icon); },
        src: doc.thumbnail_url });
      body = el("div", {},
        el("button", { type: "button", class: "thumb-button", "aria-label": t("doc.enlarge", { name: doc.name }),
          onclick: () => showLightbox(doc.url, doc.name) }, image),
        el("div", { class: "doc-name" }, doc.name));
    } else if (doc.kind === "pdf") {
      body = el("a", { href: doc.url, target: "_blank", rel: "noopener", class: "pdf-link",
        onclick: (e) => { e.preventDefault(); openPdf(doc); } },
        t(doc.pages === 1 ? "doc.pdf_one_page" : "doc.pdf", { name: doc.name, pages: doc.pages }));
    } else {
      body = el("a", { href: doc.url, target: "_blank", rel: "noopener", class: "doc-link" }, doc.name);
    }
    return el("div", { class: "item document" + (event.by === me ? " mine" : ""), "data-seq": event.seq },
      byLine(event), body);
  }
  if (event.type === "customer_joined") {
    if (timelineShown.joined) return null;
    timelineShown.joined = true;
  }
  // The console shows the server's English line (with the recipient); the customer page its own.
  const text = me === "agent" ? event.text : systemText(event);
  if (text) {
    const item = el("div", { class: "item system", "data-seq": event.seq }, text);
    // A merge names the other room: agents can open it.
    if (me === "agent" && event.room) item.append(" · ", el("a", { href: `#room=${event.room}` }, "open it"));
    return item;
  }
  return null;
}

// Read horizons, for the room shown: says how far this page has seen the other side's messages
// and documents (once the page is visible, at most once a second), and shows "Seen" under the
// last of this side's items the other side has seen. `me` is "agent" or "customer";
// `onReported` runs after the server took a horizon.
let shownReads = null;
document.addEventListener("visibilitychange", () => { if (shownReads) shownReads.schedule(); });

function trackReads(roomId, me, seenLabel, onReported) {
  const other = me === "agent" ? "customer" : "agent";
  let seen = 0;      // how far the other side has seen
  let newest = 0;    // the other side's newest item shown here
  let reported = 0;  // the horizon the server has from this page
  let timer = null;
  const showSeen = () => {
    const content = $("content");
    content.querySelectorAll(".seen").forEach((node) => node.remove());
    const mine = [...content.querySelectorAll(".item.mine")].filter((node) => Number(node.dataset.seq) <= seen);
    if (mine.length) mine[mine.length - 1].append(el("div", { class: "seen" }, seenLabel));
  };
  const report = () => {
    timer = null;
    if (document.visibilityState !== "visible" || newest <= reported || shownReads !== tracker) return;
    const seq = newest;
    api("POST", `/api/rooms/${roomId}/read`, { seq }).then(() => {
      reported = Math.max(reported, seq);
      if (onReported) onReported();
    }, () => {});
  };
  const tracker = {
    schedule() { if (!timer) timer = setTimeout(report, 1000); },
    // The other side's horizon, from the room's view or a `read_up_to` event.
    seenUpTo(seq) {
      if (seq > seen) { seen = seq; showSeen(); }
    },
    // Every timeline event, after its item (if any) is shown.
    onEvent(event) {
      if (event.type === "read_up_to") {
        if (event.by === other) tracker.seenUpTo(event.read_up_to);
      } else if (event.by === other && (event.type === "message_posted" || event.type === "document_shared")) {
        newest = Math.max(newest, event.seq);
        tracker.schedule();
      } else if (event.by === me && event.seq <= seen) {
        showSeen();
      }
    },
  };
  shownReads = tracker;
  return tracker;
}

// Typing indicators, for the room shown: tells the server as this side types (at most once per
// 2 s; the server drops the rest anyway), and shows `label` while the `other` side ("agent" or
// "customer") types: for as long as the server says, or until their next message or document.
let shownTyping = null;
document.addEventListener("input", (e) => {
  if (e.target.id === "chat-input" && shownTyping) shownTyping.typed(e.target.value);
});

function trackTyping(roomId, other, label) {
  let sentAt = 0;
  let timer = null;
  const hide = () => {
    clearTimeout(timer);
    timer = null;
    $("typing").textContent = "";
  };
  hide();
  const tracker = {
    typed(value) {
      if (!value.trim() || Date.now() - sentAt < 2000) return;
      sentAt = Date.now();
      api("POST", `/api/rooms/${roomId}/typing`).catch(() => {});
    },
    // A `typing` event of the live stream (anyone's but this session's own).
    onTyping(typing) {
      if (shownTyping !== tracker || typing.by !== other) return;
      clearTimeout(timer);
      $("typing").textContent = label;
      timer = setTimeout(hide, typing.expires_in_ms);
    },
    // Every timeline event: the other side's message or document ends its typing.
    onEvent(event) {
      if (event.by === other && (event.type === "message_posted" || event.type === "document_shared")) hide();
    },
  };
  shownTyping = tracker;
  return tracker;
}

// Whether `error` (from `api`) says the room is out of reach for good: signed out, no access,
// gone. Anything else (no network, a proxy's 502 during a deploy, 5xx, 429) passes: try again.
function refused(error) {
  return [401, 403, 404, 410].includes(error.status);
}

// Loads the timeline, then follows it live: calls `onEvent` once per event, in order;
// `onFail` when the room cannot be read any more (signed out, revoked, gone); `onTyping` for
// each typing signal from the other side; and `onConnection(false)` while the server cannot be
// reached (it keeps trying, sooner when the device comes back online), `onConnection(true)`
// once it can again.
async function follow(roomId, { onEvent, onFail, onTyping, onConnection }) {
  let last = 0;
  let source = null;
  let stopped = false;
  let retry = null;
  let delay = 1000;
  let connected = true;
  const connection = (up) => {
    if (up === connected) return;
    connected = up;
    if (onConnection) onConnection(up);
  };
  const deliver = (event) => {
    if (stopped || event.seq <= last) return;
    last = event.seq;
    onEvent(event);
  };
  const again = () => {
    if (stopped || retry) return;
    retry = setTimeout(() => { retry = null; connect(); }, delay);
    delay = Math.min(delay * 2, 10000);
  };
  const online = () => {
    if (!retry) return;
    clearTimeout(retry);
    retry = null;
    connect();
  };
  window.addEventListener("online", online);
  async function connect() {
    if (source) source.close();
    source = null;
    try {
      for (;;) {
        const page = await api("GET", `/api/rooms/${roomId}/events?after=${last}&limit=1000`);
        page.forEach(deliver);
        if (page.length < 1000) break;
      }
    } catch (error) {
      if (stopped) return;
      if (refused(error)) {
        if (onFail) onFail(error);
      } else {
        connection(false);
        again();
      }
      return;
    }
    if (stopped) return;
    connection(true);
    // EventSource reconnects by itself after a network error, resuming with Last-Event-ID;
    // an error answer closes it for good: then read the timeline again and start over.
    source = new EventSource(`/api/rooms/${roomId}/live?after=${last}${asCustomer() ? "&as=customer" : ""}`);
    source.addEventListener("timeline", (message) => deliver(JSON.parse(message.data)));
    source.addEventListener("typing", (message) => { if (!stopped && onTyping) onTyping(JSON.parse(message.data)); });
    source.onopen = () => {
      delay = 1000;
      connection(true);
    };
    source.onerror = () => {
      if (stopped) return;
      connection(false);
      if (source.readyState === EventSource.CLOSED) again();
    };
  }
  await connect();
  return {
    close() {
      stopped = true;
      clearTimeout(retry);
      window.removeEventListener("online", online);
      if (source) source.close();
    },
  };
}

// A message's `client_key`. crypto.randomUUID exists only on secure origins (and Safari 15.4+):
// a phone trying the server over the LAN has getRandomValues only.
function newClientKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The last send that failed: its room, text and key.
let unsent = null;

// Posts `text` to `room`; rejects as `api` does. A text whose send failed keeps its key when it
// is sent again unchanged, so that a send whose answer was lost is recorded once; any other
// send (the same words sent again on purpose too) gets a new key.
async function postChatMessage(room, text) {
  const retry = unsent && unsent.room === room && unsent.text === text;
  const key = retry ? unsent.key : newClientKey();
  try {
    await api("POST", `/api/rooms/${room}/messages`, { text, client_key: key });
    if (retry) unsent = null;
  } catch (error) {
    unsent = { room, text, key };
    throw error;
  }
}

// Appends `item` to the content area, and scrolls to it if the reader was at the end already
// (or it is their own): someone reading back is not pulled down by each new item.
function showItem(item, mine) {
  const content = $("content");
  const atEnd = content.scrollHeight - content.scrollTop - content.clientHeight < 80;
  content.append(item);
  if (atEnd || mine) content.scrollTop = content.scrollHeight;
}

// The largest document the server takes, in bytes (from `/api/me`; 0 until known).
let maxDocumentBytes = 0;

// Uploads `file` with a progress bar; resolves with the event or rejects with the API error (or
// an error without a code when the connection failed, or when no byte went out for a minute:
// a phone that moved from Wi-Fi to mobile data can leave an upload hanging for good).
function uploadFile(roomId, file, progress) {
  return new Promise((resolve, reject) => {
    // A server refuses a larger body before reading it, which a browser may report as a broken
    // connection: say what it is instead, before sending anything.
    if (maxDocumentBytes && file.size > maxDocumentBytes) {
      const error = new Error(`${file.name} is larger than the ${Math.floor(maxDocumentBytes / 1048576)} MiB limit`);
      error.code = "too_large";
      error.limit = maxDocumentBytes;
      reject(error);
      return;
    }
    const request = new XMLHttpRequest();
    request.open("POST", `/api/rooms/${roomId}/documents?name=${encodeURIComponent(file.name)}`);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    if (asCustomer()) request.setRequestHeader("x-collab-as", "customer");
    progress.classList.remove("hidden");
    progress.value = 0;
    let stalled = null;
    const watch = () => {
      clearTimeout(stalled);
      stalled = setTimeout(() => request.abort(), 60000);
    };
    const done = () => {
      clearTimeout(stalled);
      progress.classList.add("hidden");
    };
    // Sent whole: the answer may take a while (a large PDF read back, a store completing it).
    request.upload.onload = () => clearTimeout(stalled);
    request.upload.onprogress = (e) => {
      watch();
      if (e.lengthComputable) progress.value = e.loaded / e.total;
    };
    request.onload = () => {
      done();
      let data = null;
      try { data = JSON.parse(request.responseText || "null"); } catch (_) { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(data);
      else {
        const error = new Error((data && data.error && data.error.message) || request.statusText || "the upload failed");
        error.code = data && data.error && data.error.code;
        error.limit = data && data.error && data.error.limit;
        error.status = request.status;
        reject(error);
      }
    };
    request.onerror = request.onabort = () => { done(); reject(new Error("the upload failed")); };
    watch();
    request.send(file);
  });
}
