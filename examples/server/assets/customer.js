// The customer page: opened from the invite link, then the room.
"use strict";

const $ = (id) => document.getElementById(id);
let roomId = null;

async function start() {
  setupLightbox();
  const match = location.pathname.match(/^\/join\/([0-9a-f]+)$/);
  try {
    if (match) {
      const joined = await api("POST", "/api/join", { token: match[1] });
      roomId = joined.room;
      // Keep the token out of the history and of any later referrer.
      history.replaceState(null, "", "/room");
    } else {
      const me = await api("GET", "/api/me");
      roomId = me.room;
    }
  } catch (error) {
    $("join-error").textContent = "This link does not work: it may have expired or been revoked. Ask your agent for a new one.";
    $("join-error").classList.remove("hidden");
    $("chat").classList.add("hidden");
    return;
  }
  await refresh();
  await follow(roomId, async (event) => {
    const item = renderEvent(event, "customer");
    if (item) {
      $("content").append(item);
      $("content").scrollTop = $("content").scrollHeight;
    }
    if (["room_renamed", "timed_out", "reactivated", "closed", "session_revoked"].includes(event.type)) refresh();
  }, () => refresh());
}

function noAccess(message) {
  $("join-error").textContent = message;
  $("join-error").classList.remove("hidden");
  for (const id of ["chat-input", "send", "upload-button"]) $(id).disabled = true;
}

async function refresh() {
  let room;
  try {
    room = await api("GET", `/api/rooms/${roomId}`);
  } catch (error) {
    noAccess(error.code === "room_closed"
      ? "This room is closed."
      : "You cannot reach this room any more. Ask your agent for a new link.");
    return;
  }
  $("room-name").textContent = room.name;
  document.title = room.name;
  $("room-status").textContent = room.status.replace("_", " ");
  // A timed-out or closed room stays readable for the customer; only writing stops.
  const notices = {
    timed_out: "This room has timed out: you can read it, but not write. Ask your agent to invite you again.",
    closed: "This room is closed: you can read it and open its documents, but not write.",
  };
  const readOnly = room.status in notices;
  $("readonly-notice").textContent = notices[room.status] || "";
  $("readonly-notice").classList.toggle("hidden", !readOnly);
  for (const id of ["chat-input", "send", "upload-button"]) $(id).disabled = readOnly;
}

$("chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("chat-input").value;
  if (!text.trim()) return;
  $("chat-input").value = "";
  try {
    await api("POST", `/api/rooms/${roomId}/messages`, { text, client_key: crypto.randomUUID() });
  } catch (error) {
    $("chat-input").value = text;
    status("error", error.message);
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
  status("", `Uploading ${file.name}…`);
  try {
    await uploadFile(roomId, file, $("upload-progress"));
    status("notice", `${file.name} was shared.`);
  } catch (error) {
    status("error", error.message);
    if (error.code === "room_timed_out" || error.code === "room_closed") refresh();
  }
});

start();
