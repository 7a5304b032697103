// The agent console: rooms list, room view, invites, documents, chat, dev inbox.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;      // the open room's view
let source = null;       // its live timeline
let opening = 0;         // which openRoom call is the latest
let typing = null;        // the customer's typing indicator
let reads = null;        // the open room's read horizons
let inviteChannel = "email";
let inviteAnyway = null;  // the number or address the agent chose to invite here though it has a room
const drafts = new Map(); // what was typed in each room and not sent, by room id

async function start() {
  // The console stays in English; the timeline's shared parts read the English strings file.
  await loadStrings("en").catch(() => {});
  setupLightbox();
  try {
    const me = await api("GET", "/api/me");
    if (me.role !== "agent") throw new Error("not an agent");
    showConsole(me.agent);
  } catch (_) {
    $("signin-page").classList.remove("hidden");
  }
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api("POST", "/api/session", { agent: $("agent").value, password: $("password").value });
    $("signin-page").classList.add("hidden");
    showConsole($("agent").value);
  } catch (error) {
    $("signin-error").textContent = "Sign-in failed: check the agent id and password.";
  }
});

$("signout").addEventListener("click", async () => {
  await api("DELETE", "/api/session");
  location.reload();
});

function showConsole(agent) {
  $("console").classList.remove("hidden");
  $("me").textContent = agent;
  loadRooms();
  openRoomOfHash();
  // The invite's languages: those the customer page has (the server lists them).
  api("GET", "/api/me").then((me) => {
    maxDocumentBytes = me.max_document_bytes || 0;
    const names = new Intl.DisplayNames(["en"], { type: "language" });
    languages = me.languages || [];
    for (const tag of languages) $("invite-locale").append(el("option", { value: tag }, `In ${names.of(tag)}`));
  }, () => {});
  // The Dev inbox exists only while a development notifier sends to it (dev mode).
  api("GET", "/api/dev/inbox").then(() => $("inbox-button").classList.remove("hidden"), () => {});
}

// A deep link `#room=…`, on load or when the address changes.
function openRoomOfHash() {
  const match = location.hash.match(/room=([0-9a-f-]+)/);
  if (match && (!current || current.id !== match[1]) && !$("console").classList.contains("hidden")) openRoom(match[1]);
}
window.addEventListener("hashchange", openRoomOfHash);

// Below 700 px wide the room list folds away behind the Rooms button.
function showRoomList(open) {
  $("room-list").classList.toggle("open", open);
  $("rooms-toggle").setAttribute("aria-expanded", String(open));
}
$("rooms-toggle").addEventListener("click", () => showRoomList(!$("room-list").classList.contains("open")));

async function loadRooms() {
  const q = $("search").value.trim();
  let query = "";
  if (q.startsWith("+")) query = `phone=${encodeURIComponent(q)}`;
  else if (q.includes("@")) query = `email=${encodeURIComponent(q)}`;
  else if (q) query = `name=${encodeURIComponent(q)}`;
  const list = $("rooms");
  try {
    const page = await api("GET", `/api/rooms?${query}`);
    list.replaceChildren(...page.rooms.map((room) => el("li", {},
      el("button", {
        type: "button",
        class: "room-button" + (current && current.id === room.id ? " selected" : ""),
        "data-room": room.id,
        "aria-current": current && current.id === room.id ? "true" : "false",
        onclick: () => { showRoomList(false); openRoom(room.id); },
      }, room.name,
      room.unread ? el("span", { class: "unread", title: `${room.unread} unread` }, String(room.unread)) : null,
      el("small", {}, customerLine(room.customer) || room.status)))));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error" }, error.message));
  }
}

// Other rooms' unread counts and new rooms, while the console is in view and the agent at it:
// every request counts as activity, so polling an unattended screen would keep its sign-in from
// ever going idle. Not while the agent moves through the list by keyboard (redrawing it would
// take the focus away).
let lastActive = Date.now();
for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => { lastActive = Date.now(); });
setInterval(() => {
  if (document.visibilityState === "visible" && !$("console").classList.contains("hidden")
    && Date.now() - lastActive < 10 * 60000 && !$("rooms").contains(document.activeElement)) loadRooms();
}, 30000);

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadRooms, 250);
});

$("new-room").addEventListener("click", async () => {
  const room = await api("POST", "/api/rooms");
  await loadRooms();
  showRoomList(false);
  openRoom(room.id);
});

function customerLine(customer) {
  if (!customer) return "";
  const id = customer.phone || customer.email || "";
  return `${customer.first_name} ${customer.last_name}${id ? " · " + id : ""}`;
}

function showRoom(room) {
  current = room;
  $("room-name").textContent = room.name;
  $("room-status").textContent = room.status.replace("_", " ");
  $("customer-info").textContent = customerLine(room.customer);
  $("invite-button").textContent = room.customer ? "Re Invite" : "Invite";
  $("export-link").href = `/api/rooms/${room.id}/export`;
  // An erased room can only be read; a merged one read and erased (its content is elsewhere).
  const erased = room.status === "erased";
  const merged = room.status === "merged";
  for (const id of ["invite-button", "share-button", "chat-input", "send"]) $(id).disabled = erased || merged;
  $("erase-button").disabled = erased;
}

function signedOut() {
  $("console").classList.add("hidden");
  $("signin-page").classList.remove("hidden");
}

async function openRoom(id) {
  const mine = ++opening;
  if (source) source.close();
  source = null;
  // A reply typed for one customer must not go to the next: each room keeps its own draft.
  if (current) drafts.set(current.id, $("chat-input").value);
  $("chat-input").value = drafts.get(id) || "";
  $("connection").textContent = "";
  // Set before the answer, so that the hashchange it causes finds this room already current.
  current = { id, customer: null, channels_used: [] };
  location.hash = `room=${id}`;
  timelineShown.joined = false;
  $("no-room").classList.add("hidden");
  $("room").classList.remove("hidden");
  $("content").replaceChildren();
  clearAccess();
  reads = trackReads(id, "agent", "Seen", loadRooms);
  typing = trackTyping(id, "customer", "The customer is typing…");
  try {
    const room = await api("GET", `/api/rooms/${id}`);
    if (mine !== opening) return;
    showRoom(room);
    reads.seenUpTo(room.seen_by_customer);
  } catch (error) {
    if (error.status === 401) return signedOut();
    $("content").append(el("div", { class: "item system error" }, error.message));
    return;
  }
  loadRooms();
  const followed = await follow(id, { onEvent: async (event) => {
    if (mine !== opening) return;
    const item = renderEvent(event, "agent");
    if (item) showItem(item, event.by === "agent");
    reads.onEvent(event);
    typing.onEvent(event);
    if (ACCESS_EVENTS.includes(event.type)) loadAccess();
    // Everything shown before is gone from the server: show the room as it is now (once: the
    // room shown again has this event in its history).
    if (event.type === "room_erased" && current.status !== "erased") return openRoom(id);
    if (["room_renamed", "customer_invited", "timed_out", "reactivated", "closed", "room_merged", "merged_into"]
      .includes(event.type)) {
      showRoom(await api("GET", `/api/rooms/${id}`));
      loadRooms();
    }
  },
  onFail: (error) => {
    if (mine === opening) $("connection").textContent = "";
    if (error.status === 401) signedOut();
    else if (mine === opening) $("content").append(el("div", { class: "item system error" }, error.message));
  },
  onTyping: (signal) => { if (mine === opening) typing.onTyping(signal); },
  onConnection: (up) => {
    if (mine === opening) $("connection").textContent = up ? "" : "Reconnecting… new messages will appear when the server is back.";
  } });
  // A later click opened another room meanwhile: this one is not shown any more.
  if (mine === opening) source = followed;
  else followed.close();
}

$("chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value;
  if (!text.trim() || !current) return;
  const room = current.id;
  input.value = "";
  try {
    await postChatMessage(room, text);
  } catch (error) {
    // Back where it was typed: the box, or that room's draft if another room is open now.
    const restore = (typed) => (typed ? `${text} ${typed}` : text);
    if (current && current.id === room) input.value = restore(input.value);
    else drafts.set(room, restore(drafts.get(room)));
    alert(error.message);
  }
});

$("erase-button").addEventListener("click", async () => {
  if (!current) return;
  const room = current.id;
  if (!confirm("Erase this room's personal data for good? Messages, the customer's name, number and "
    + "address, and every document are deleted; the customer's links stop working.")) return;
  try {
    await api("POST", `/api/rooms/${room}/erase`);
  } catch (error) {
    alert(error.message);
  }
});

// Links and sessions: the room's live invite links and the customer's sessions, each with a
// Revoke button. Read when the panel is opened, and again when the timeline says they changed.
const ACCESS_EVENTS = ["customer_invited", "invite_delivery", "customer_joined", "invite_revoked", "session_revoked", "closed"];
const CHANNEL_NAMES = { sms: "SMS", email: "Email", link: "Link" };
const when = (iso) => new Date(iso).toLocaleString();

function clearAccess() {
  $("access-links").replaceChildren();
  $("access-sessions").replaceChildren();
  $("access-message").textContent = "";
  $("access-message").className = "";
}

function accessRow(text, label, path) {
  return el("li", { class: "access-row" }, el("span", {}, text),
    el("button", { type: "button", class: "secondary", "aria-label": label, onclick: () => revokeAccess(path) }, "Revoke"));
}

async function loadAccess() {
  if (!current || !$("access").open) return;
  const id = current.id;
  let access;
  try {
    access = await api("GET", `/api/rooms/${id}/access`);
  } catch (error) {
    if (!current || current.id !== id) return;
    $("access-message").className = "error";
    $("access-message").textContent = error.message;
    return;
  }
  if (!current || current.id !== id) return;
  const links = access.invites.filter((invite) => invite.live).map((invite) => {
    const channel = CHANNEL_NAMES[invite.channel] || invite.channel;
    const to = invite.recipient ? ` to ${invite.recipient}` : "";
    return accessRow(`${channel}${to} · ${invite.status} · created ${when(invite.issued_at)} · expires ${when(invite.expires_at)}`,
      `Revoke the ${channel} link${to} created ${when(invite.issued_at)}`, `/api/rooms/${id}/invites/${invite.id}`);
  });
  const sessions = access.sessions.map((session) => {
    const channel = CHANNEL_NAMES[session.channel] || session.channel || "an invite";
    return accessRow(`Joined ${when(session.joined_at)} through the ${channel} link`,
      `Revoke the session joined ${when(session.joined_at)}`, `/api/rooms/${id}/sessions/${session.participant}`);
  });
  // A Revoke button with the focus goes with the old lists: the focus stays in the panel.
  const focused = document.activeElement;
  const hadFocus = focused && focused.closest(".access-list");
  $("access-links").replaceChildren(...(links.length ? links : [el("li", { class: "access-none" }, "No live links.")]));
  $("access-sessions").replaceChildren(...(sessions.length ? sessions : [el("li", { class: "access-none" }, "No live sessions.")]));
  if (hadFocus) $("access").querySelector("summary").focus();
}

async function revokeAccess(path) {
  try {
    await api("DELETE", path);
    $("access-message").className = "notice";
    $("access-message").textContent = path.includes("/sessions/")
      ? "Session revoked, with the link it came through: send a new invite to let the customer back in."
      : "Link revoked: it no longer opens the room.";
  } catch (error) {
    $("access-message").className = "error";
    $("access-message").textContent = error.message;
  }
  await loadAccess();
}

$("access").addEventListener("toggle", loadAccess);

// The invite frame: a used channel shows its details locked; a new one locks only the names.
function selectChannel(channel) {
  inviteChannel = channel;
  for (const c of ["sms", "email", "link"]) {
    $(`channel-${c}`).classList.toggle("active", c === channel);
    $(`channel-${c}`).setAttribute("aria-pressed", String(c === channel));
  }
  const customer = current.customer;
  const used = current.channels_used.includes(channel);
  $("first-name").value = customer ? customer.first_name : "";
  $("last-name").value = customer ? customer.last_name : "";
  $("first-name").disabled = $("last-name").disabled = Boolean(customer);
  const locked = channel === "sms" ? customer && customer.phone : channel === "email" ? customer && customer.email : null;
  $("identifier").classList.toggle("hidden", channel === "link");
  $("invite-locale").classList.toggle("hidden", channel === "link");
  $("identifier").placeholder = channel === "sms" ? "Mobile number, e.g. +447911123456" : "Email address";
  $("identifier").value = used && locked ? locked : "";
  $("identifier").disabled = Boolean(used && locked);
  $("link-box").classList.add("hidden");
  $("invite-send").textContent = channel === "link" ? "Get Link" : "Send";
  $("invite-message").textContent = "";
  $("invite-message").className = "";
  inviteAnyway = null;
  if (channel === "sms" && !current.sms_activated) {
    $("invite-message").className = "error";
    $("invite-message").textContent = "SMS is not activated: no sender number is configured.";
  }
}

for (const c of ["sms", "email", "link"]) $(`channel-${c}`).addEventListener("click", () => selectChannel(c));

$("invite-button").addEventListener("click", () => {
  $("invite-title").textContent = current.customer ? "Re Invite" : "Invite the customer";
  selectChannel(current.customer && current.customer.phone && !current.customer.email ? "sms" : "email");
  openDialog($("invite-frame"), $(`channel-${inviteChannel}`));
});
$("invite-cancel").addEventListener("click", () => closeDialog($("invite-frame")));

// Another room of the tenant whose customer has this mobile number or email address, if any.
async function otherRoomOf(identifier) {
  const field = inviteChannel === "sms" ? "phone" : "email";
  try {
    const page = await api("GET", `/api/rooms?${field}=${encodeURIComponent(identifier)}&limit=5`);
    return page.rooms.find((room) => room.id !== current.id && !["merged", "erased"].includes(room.status)) || null;
  } catch {
    return null; // A malformed number or address: the invite itself says what is wrong with it.
  }
}

$("invite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { channel: inviteChannel };
  if (!current.customer) {
    body.first_name = $("first-name").value;
    body.last_name = $("last-name").value;
  }
  if (inviteChannel !== "link" && !$("identifier").disabled) body.identifier = $("identifier").value;
  if (inviteChannel !== "link" && $("invite-locale").value) body.locale = $("invite-locale").value;
  // A customer who has a room already is shown it before a second one is opened for them.
  if (!current.customer && body.identifier && body.identifier !== inviteAnyway) {
    const other = await otherRoomOf(body.identifier.trim());
    if (other) {
      inviteAnyway = body.identifier;
      const open = el("a", { href: `#room=${other.id}`, onclick: () => closeDialog($("invite-frame")) },
        `open “${other.name}”`);
      // Or one room for them: invited here, then the other room merged into this one.
      const merge = el("button", { type: "button", id: "invite-and-merge", onclick: () => inviteAndMerge(body, other) },
        `Invite here and merge “${other.name}” into this room`);
      $("invite-message").className = "error";
      $("invite-message").replaceChildren("This customer already has a room: ", open,
        ". Press Send again to invite them to this one too, or ", merge);
      return;
    }
  }
  try {
    const answer = await api("POST", `/api/rooms/${current.id}/invites`, body);
    if (answer.link) {
      $("link-output").value = answer.link;
      $("link-box").classList.remove("hidden");
      $("invite-message").className = "notice";
      $("invite-message").textContent = "Copy the link and send it to the customer.";
    } else {
      $("invite-message").className = "notice";
      $("invite-message").textContent = inviteChannel === "sms" ? "The SMS is on its way." : "The email is on its way.";
    }
    showRoom(await api("GET", `/api/rooms/${current.id}`));
    $("invite-title").textContent = "Re Invite";
  } catch (error) {
    $("invite-message").className = "error";
    // A server that answers with the customer's room (COLLAB_EXISTING_CUSTOMER=answer).
    if (error.code === "customer_has_room" && error.room) {
      const open = el("a", { href: `#room=${error.room}`, onclick: () => closeDialog($("invite-frame")) }, "open it");
      $("invite-message").replaceChildren("This customer already has a room: ", open, ".");
      return;
    }
    $("invite-message").textContent = error.message;
  }
});

async function inviteAndMerge(body, other) {
  const room = current.id;
  try {
    await api("POST", `/api/rooms/${room}/invites`, body);
    await api("POST", `/api/rooms/${other.id}/merge`, { into: room });
    closeDialog($("invite-frame"));
    loadRooms();
    openRoom(room);
  } catch (error) {
    $("invite-message").className = "error";
    $("invite-message").textContent = error.message;
  }
}

$("copy-link").addEventListener("click", async () => {
  $("link-output").select();
  try { await navigator.clipboard.writeText($("link-output").value); } catch (_) { document.execCommand("copy"); }
  $("invite-message").textContent = "Copied.";
});

// Share Docs: drop zone or "Choose your document", with progress and a confirmation.
$("share-button").addEventListener("click", () => {
  $("upload-message").textContent = "";
  openDialog($("share-frame"), $("choose-file"));
});
$("share-close").addEventListener("click", () => closeDialog($("share-frame")));
$("choose-file").addEventListener("click", () => $("file-input").click());

async function share(file) {
  $("upload-message").className = "";
  $("upload-message").textContent = `Uploading ${file.name}…`;
  try {
    await uploadFile(current.id, file, $("upload-progress"));
    $("upload-message").className = "notice";
    $("upload-message").textContent = `${file.name} was shared.`;
  } catch (error) {
    $("upload-message").className = "error";
    $("upload-message").textContent = error.message;
  }
}

$("file-input").addEventListener("change", () => {
  if ($("file-input").files.length) share($("file-input").files[0]);
  $("file-input").value = "";
});
const zone = $("drop-zone");
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  if (e.dataTransfer.files.length) share(e.dataTransfer.files[0]);
});

// Tenant settings: every agent reads them, admins change them; each change is in the history.
let languages = [];

async function loadSettings() {
  const [settings, history] = await Promise.all([
    api("GET", "/api/settings"),
    api("GET", "/api/settings/history?limit=20"),
  ]);
  const s = settings.settings;
  $("settings-timeout").value = s.timeout_days || "";
  $("settings-default-timeout").textContent = `${settings.default_timeout_days} days`;
  $("settings-message").value = s.timed_out_message || "";
  $("settings-sms").value = s.sms_template || "";
  $("settings-email").value = s.email_template || "";
  const names = new Intl.DisplayNames(["en"], { type: "language" });
  $("settings-locale").replaceChildren(
    el("option", { value: "" }, `The deployment's (${names.of(settings.default_locale)})`),
    ...languages.map((tag) => el("option", { value: tag }, names.of(tag))));
  $("settings-locale").value = s.locale || "";
  $("settings-who").textContent = settings.version
    ? `Last changed by ${settings.changed_by}, ${when(settings.changed_at)}.`
    : "Never changed: the deployment's settings are in force.";
  for (const id of ["settings-timeout", "settings-message", "settings-sms", "settings-email", "settings-locale", "settings-save"]) {
    $(id).disabled = !settings.can_change;
  }
  if (!settings.can_change) $("settings-message-line").textContent = "Only the tenant's admins can change these.";
  const described = (s) => Object.entries(s).map(([key, value]) => `${key.replace(/_/g, " ")}: ${value}`).join("; ") || "all the deployment's";
  $("settings-history").replaceChildren(...history.changes.map((c) =>
    el("li", {}, `Version ${c.version}, ${when(c.at)}, by ${c.by}: ${described(c.settings)}`)));
}

$("settings-button").addEventListener("click", async () => {
  $("settings-message-line").className = "";
  $("settings-message-line").textContent = "";
  try {
    await loadSettings();
  } catch (error) {
    $("settings-message-line").className = "error";
    $("settings-message-line").textContent = error.message;
  }
  openDialog($("settings-frame"), $("settings-timeout"));
});
$("settings-close").addEventListener("click", () => closeDialog($("settings-frame")));
$("settings-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = (id) => $(id).value.trim() || null;
  const days = $("settings-timeout").value.trim();
  const body = {
    timeout_days: days ? Number(days) : null,
    timed_out_message: text("settings-message"),
    sms_template: text("settings-sms"),
    email_template: text("settings-email"),
    locale: text("settings-locale"),
  };
  try {
    await api("PUT", "/api/settings", body);
    await loadSettings();
    $("settings-message-line").className = "notice";
    $("settings-message-line").textContent = "Saved: the rooms follow from now on.";
  } catch (error) {
    $("settings-message-line").className = "error";
    $("settings-message-line").textContent = error.message;
  }
});

// The dev inbox: what the development notifiers "sent", with clickable links.
$("inbox-button").addEventListener("click", async () => {
  const messages = await api("GET", "/api/dev/inbox");
  $("inbox-list").replaceChildren(...messages.reverse().map((m) => el("li", {},
    el("div", {}, el("strong", {}, m.to), m.subject ? ` — ${m.subject}` : ""),
    el("p", { class: "inbox-text" }, m.text),
    el("a", { href: m.link, target: "_blank", rel: "noopener", class: "inbox-link" }, m.link))));
  openDialog($("inbox"), $("inbox-close"));
});
$("inbox-close").addEventListener("click", () => closeDialog($("inbox")));

start();
