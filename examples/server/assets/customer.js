// The customer page: opened from the invite link, then the room. Its words come from the
// strings file of its language (assets/i18n/<tag>.json, through `t` in common.js).
"use strict";

const $ = (id) => document.getElementById(id);
let roomId = null;
// Set once the customer left on this device: the room is out of reach on purpose.
let left = false;
let typing = null; // the agents' typing indicator
let reads = null;  // read horizons: this page's, and the agents' "Seen"
let following = null; // the live timeline, once caught up

// The strings of the first language that has a file: the one the server chose for this customer
// (the tenant's, or the browser's where allowed), else, before any room is known (a link that
// does not work), the browser's; English last.
async function chooseStrings(locale) {
  const wanted = locale ? [locale] : [...navigator.languages].flatMap((tag) => [tag, tag.split("-")[0]]);
  for (const tag of [...wanted, "en"]) {
    if (!/^[A-Za-z0-9-]{1,35}$/.test(tag)) continue;
    try {
      await loadStrings(tag);
      return;
    } catch (_) { /* no file for it: the next one */ }
  }
}

async function start() {
  const match = location.pathname.match(/^\/join\/([0-9a-f]+)$/);
  let me = null;
  try {
    if (match) {
      await api("POST", "/api/join", { token: match[1] });
      // Keep the token out of the history and of any later referrer.
      history.replaceState(null, "", "/room");
    }
    me = await api("GET", "/api/me");
    if (!me.room) throw new Error("not a customer");
    roomId = me.room;
    maxDocumentBytes = me.max_document_bytes || 0;
  } catch (_) {
    me = null;
  }
  await chooseStrings(me && me.locale);
  document.title = t("page.title");
  setupLightbox();
  if (!me) {
    $("join-error").textContent = t("join.failed");
    $("join-error").classList.remove("hidden");
    $("chat").classList.add("hidden");
    return;
  }
  $("leave").classList.remove("hidden");
  reads = trackReads(roomId, "customer", t("item.seen"));
  typing = trackTyping(roomId, "agent", t("chat.agent_typing"));
  await refresh();
  // The history arrives in one go: a screen reader announces what comes after it, not all of it.
  $("content").setAttribute("aria-busy", "true");
  following = await follow(roomId, { onEvent: async (event) => {
    if (left) return;
    const item = renderEvent(event, "customer");
    if (item) showItem(item, event.by === "customer");
    reads.onEvent(event);
    typing.onEvent(event);
    // This room became part of another: the session leads there now.
    if (event.type === "merged_into") {
      location.reload();
      return;
    }
    // The room's content and this session are gone from the server: say so, keep nothing shown.
    if (event.type === "room_erased") {
      wipe();
      $("room-name").textContent = t("page.title");
      document.title = t("page.title");
      $("room-status").textContent = t("status.erased");
      noAccess(t("room.erased"));
      left = true;
      return;
    }
    if (["room_renamed", "timed_out", "reactivated", "closed", "session_revoked"].includes(event.type)) refresh();
  },
  onFail: () => refresh(),
  onTyping: (signal) => typing.onTyping(signal),
  onConnection: (up) => {
    if (!left) $("connection").textContent = up ? "" : t("connection.lost");
    if (up) refresh();
  } });
  $("content").removeAttribute("aria-busy");
  // Left while the history was loading: nothing more is shown.
  if (left) following.close();
}

// Takes off the page everything the room showed (an erased room, or a device the customer
// left): the conversation, an open picture or PDF, the last file name.
function wipe() {
  while (dialogs.length) closeDialog(dialogs[dialogs.length - 1].dialog);
  const picture = document.getElementById("lightbox-image");
  if (picture) picture.removeAttribute("src");
  for (const id of ["lightbox-name", "pdf-name"]) {
    if (document.getElementById(id)) document.getElementById(id).textContent = "";
  }
  $("content").replaceChildren();
  $("typing").textContent = "";
  $("connection").textContent = "";
  status("", "");
  if (following) following.close();
}

function noAccess(message) {
  $("connection").textContent = "";
  $("join-error").textContent = message;
  $("join-error").classList.remove("hidden");
  for (const id of ["chat-input", "send", "upload-button"]) $(id).disabled = true;
}

// Reads the room again and shows what it allows. A failure that is not a refusal (no network,
// a server restarting) changes nothing: the page reads the room again once the live stream is
// back.
async function refresh() {
  if (left) return;
  let room;
  try {
    room = await api("GET", `/api/rooms/${roomId}`);
  } catch (error) {
    // Left meanwhile (ending the session is what refused this): the page says so already.
    if (left || !refused(error)) return;
    // Merged into another room meanwhile: the session leads there now.
    const me = await api("GET", "/api/me").catch(() => null);
    if (me && me.room && me.room !== roomId) {
      location.reload();
      return;
    }
    if (left) return;
    noAccess(error.code === "room_closed" ? t("room.closed") : t("room.unreachable"));
    return;
  }
  if (left) return;
  $("room-name").textContent = room.name;
  document.title = room.name;
  reads.seenUpTo(room.seen_by_agents);
  $("room-status").textContent = t(`status.${room.status}`);
  // A timed-out or closed room stays readable for the customer; only writing stops.
  const readOnly = room.status === "timed_out" || room.status === "closed";
  // The tenant's own words for a timed-out room, when its admins set them.
  const notice = room.status === "timed_out" && room.timed_out_message ? room.timed_out_message : t(`room.notice.${room.status}`);
  $("readonly-notice").textContent = readOnly ? notice : "";
  $("readonly-notice").classList.toggle("hidden", !readOnly);
  for (const id of ["chat-input", "send", "upload-button"]) $(id).disabled = readOnly;
}

// What went wrong, in the page's language when its file names the error, else the server's words.
function problem(error) {
  // No answer, or not the server's (a proxy's 502): the connection.
  if (!error.code) return t("error.network");
  const key = error.code === "invalid" && error.field === "text" ? "error.invalid_text" : `error.${error.code}`;
  const mib = Math.floor((error.limit || maxDocumentBytes) / 1048576);
  return t(key) !== key ? t(key, { mib }) : t("chat.failed", { message: error.message });
}

$("chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  // Tapping Send moves the focus to it, which closes a phone's keyboard after every message.
  input.focus();
  try {
    await postChatMessage(roomId, text);
    status("", "");
  } catch (error) {
    // Give the text back, before anything typed since.
    input.value = input.value ? `${text} ${input.value}` : text;
    status("error", problem(error));
    if (error.code === "room_timed_out" || error.code === "room_closed") refresh();
  }
});

// The line under the chat bar: what happened to the last send or upload.
function status(kind, text) {
  $("upload-message").className = `pad-x ${kind}`;
  $("upload-message").textContent = text;
}

$("upload-button").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", async () => {
  const file = $("file-input").files[0];
  $("file-input").value = "";
  if (!file) return;
  // One upload at a time: they share the progress bar and the line under it.
  $("upload-button").disabled = true;
  status("", t("chat.uploading", { name: file.name }));
  try {
    await uploadFile(roomId, file, $("upload-progress"));
    status("notice", t("chat.shared", { name: file.name }));
  } catch (error) {
    status("error", error.code ? problem(error) : t("error.upload_failed"));
  }
  if (left) return;
  // As the room allows now (it may have timed out meanwhile).
  $("upload-button").disabled = false;
  await refresh();
});

// Leaving ends this device's session on the server (a shared phone keeps no way in); the
// invite link opens the room again.
$("leave").addEventListener("click", async () => {
  if (!confirm(t("page.leave_confirm"))) return;
  try {
    await api("DELETE", "/api/session");
  } catch (error) {
    status("error", problem(error));
    return;
  }
  left = true;
  wipe();
  $("leave").classList.add("hidden");
  noAccess(t("room.left"));
});

start();
