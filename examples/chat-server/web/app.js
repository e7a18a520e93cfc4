// The demo UI. All protocol handling is in realtime-client.js.
import { login, register, RealtimeClient } from "/realtime-client.js";

const $ = (id) => document.getElementById(id);
const state = {
  client: null, me: null, room: null,
  users: new Map(),      // id -> user
  messages: new Map(),   // id -> message (current room)
  reactions: new Map(),  // message id -> Map(emoji -> Set(user))
  reads: new Map(),      // user id -> read seq (current room)
  typing: new Set(),     // user ids typing in the current room
  firstSeq: null, lastTypingSent: 0,
};

async function user(id) {
  if (!state.users.has(id)) {
    state.users.set(id, { id, username: id, status: "offline" });
    try { state.users.set(id, await state.client.api("GET", `/users/${encodeURIComponent(id)}`)); } catch {}
  }
  return state.users.get(id);
}
const name = (id) => state.users.get(id)?.username ?? id;

// ---------------------------------------------------------------- login
async function start(username, password, isRegister) {
  $("login-error").textContent = "";
  try {
    if (isRegister) await register(location.origin, username, password);
    const { token, user: me } = await login(location.origin, username, password);
    state.me = me;
    state.users.set(me.id, me);
    state.client = new RealtimeClient({ token });
    window.realtime = state.client; // for poking at it from the devtools console
    wire(state.client);
    state.client.connect();
    $("login").hidden = true;
    $("app").hidden = false;
    $("me").textContent = me.username;
    await loadRooms();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
}
$("login-form").addEventListener("submit", (e) => { e.preventDefault(); start($("username").value, $("password").value, false); });
$("register-btn").addEventListener("click", () => start($("username").value, $("password").value, true));

// ---------------------------------------------------------------- rooms
async function loadRooms() {
  const { rooms } = await state.client.api("GET", "/rooms");
  const ul = $("rooms");
  ul.replaceChildren();
  for (const r of rooms) {
    // The connection gets a room's live events once it has joined it (resume mode).
    if (!state.client.rooms.has(r.id) && state.client.status === "connected") state.client.join(r.id).catch(() => {});
    const li = document.createElement("li");
    li.dataset.room = r.id;
    li.className = state.room?.id === r.id ? "active" : "";
    li.append(r.name);
    if (r.unread_count > 0 && state.room?.id !== r.id) {
      const b = document.createElement("span"); b.className = "badge"; b.textContent = r.unread_count; li.append(b);
    }
    li.addEventListener("click", () => openRoom(r));
    ul.append(li);
  }
}

$("create-room-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const room = await state.client.api("POST", "/rooms", { name: $("new-room").value });
  $("new-room").value = "";
  await loadRooms();
  await openRoom(room);
});

$("join-room-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = $("join-room-id").value.trim();
  try {
    await state.client.join(id);
    $("join-room-id").value = "";
    const room = await state.client.api("GET", `/rooms/${encodeURIComponent(id)}`);
    await loadRooms();
    await openRoom(room);
  } catch (err) { alert(err.message); }
});

async function openRoom(room) {
  state.room = room;
  state.messages.clear(); state.reactions.clear(); state.reads.clear(); state.typing.clear();
  $("room-title").textContent = room.name;
  $("room-id").textContent = room.id;
  $("message-list").replaceChildren();
  $("text").disabled = false; $("composer").querySelector("button").disabled = false;
  if (state.client.status === "connected") await state.client.join(room.id).catch(() => {});
  else state.client.rooms.set(room.id, { seq: 0, epoch: room.epoch });
  const page = await state.client.history(room.id);
  state.firstSeq = page.messages[0]?.seq ?? null;
  $("older").hidden = !page.has_more;
  for (const m of page.messages) await addMessage(m, false);
  for (const m of page.messages) await loadReactions(m.id);
  await loadMembers();
  scrollDown();
  markRead();
  renderTyping();
  loadRooms();
}

async function loadOlder() {
  if (!state.room || !state.firstSeq) return;
  const box = $("messages"), before = box.scrollHeight;
  const page = await state.client.history(state.room.id, state.firstSeq);
  for (const m of page.messages.slice().reverse()) await addMessage(m, true);
  state.firstSeq = page.messages[0]?.seq ?? state.firstSeq;
  $("older").hidden = !page.has_more;
  box.scrollTop = box.scrollHeight - before;
}
$("older").addEventListener("click", loadOlder);
$("messages").addEventListener("scroll", () => { if ($("messages").scrollTop === 0 && !$("older").hidden) loadOlder(); });

async function loadMembers() {
  const { members } = await state.client.api("GET", `/rooms/${encodeURIComponent(state.room.id)}/members`);
  const ul = $("members");
  ul.replaceChildren();
  for (const m of members) {
    const u = await user(m.user_id);
    const li = document.createElement("li");
    li.dataset.user = m.user_id;
    const dot = document.createElement("span"); dot.className = "dot"; dot.dataset.status = u.status ?? "offline";
    li.append(dot, u.username);
    ul.append(li);
  }
}

// ---------------------------------------------------------------- messages
function scrollDown() { const b = $("messages"); b.scrollTop = b.scrollHeight; }

async function addMessage(m, prepend) {
  if (state.messages.has(m.id)) return;
  state.messages.set(m.id, m);
  await user(m.sender_id);
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.id = m.id;
  li.dataset.seq = m.seq;
  renderMessage(li, m);
  prepend ? $("message-list").prepend(li) : $("message-list").append(li);
}

function renderMessage(li, m) {
  li.replaceChildren();
  li.classList.toggle("deleted", !!m.deleted_at);
  const who = document.createElement("span"); who.className = "who"; who.textContent = name(m.sender_id);
  const text = document.createElement("span"); text.className = "text"; text.textContent = m.deleted_at ? "message deleted" : m.content;
  const time = document.createElement("span"); time.className = "time"; time.textContent = " " + new Date(m.created_at).toLocaleTimeString();
  li.append(who, text, time);
  if (m.edited_at && !m.deleted_at) { const e = document.createElement("span"); e.className = "edited"; e.textContent = " (edited)"; li.append(e); }
  const reactions = document.createElement("span"); reactions.className = "reactions";
  for (const [emoji, users] of state.reactions.get(m.id) ?? []) {
    if (!users.size) continue;
    const r = document.createElement("span");
    r.className = "reaction" + (users.has(state.me.id) ? " mine" : "");
    r.dataset.emoji = emoji;
    r.textContent = `${emoji} ${users.size}`;
    r.addEventListener("click", () => state.client.react(m.id, emoji, users.has(state.me.id)));
    reactions.append(r);
  }
  li.append(reactions);
  if (m.sender_id === state.me.id && !m.deleted_at) {
    const readers = [...state.reads].filter(([u, seq]) => u !== state.me.id && seq >= m.seq).map(([u]) => name(u));
    if (readers.length) { const r = document.createElement("span"); r.className = "receipt"; r.textContent = `✓ read by ${readers.join(", ")}`; li.append(r); }
  }
  if (!m.deleted_at) {
    const tools = document.createElement("span"); tools.className = "tools";
    const like = document.createElement("button"); like.textContent = "👍"; like.className = "react-btn";
    like.addEventListener("click", () => state.client.react(m.id, "👍", state.reactions.get(m.id)?.get("👍")?.has(state.me.id)));
    tools.append(like);
    if (m.sender_id === state.me.id) {
      const edit = document.createElement("button"); edit.textContent = "edit";
      edit.addEventListener("click", () => { const c = prompt("Edit message", m.content); if (c) state.client.edit(m.id, c); });
      const del = document.createElement("button"); del.textContent = "delete";
      del.addEventListener("click", () => state.client.remove(m.id));
      tools.append(edit, del);
    }
    li.prepend(tools);
  }
}

function rerender(id) {
  const li = document.querySelector(`.msg[data-id="${CSS.escape(id)}"]`);
  const m = state.messages.get(id);
  if (li && m) renderMessage(li, m);
}

async function loadReactions(id) {
  try {
    const m = await state.client.api("GET", `/messages/${encodeURIComponent(id)}`);
    state.reactions.set(id, new Map(m.reactions.map((r) => [r.emoji, new Set(r.users)])));
    rerender(id);
  } catch {}
}

function markRead() {
  const last = [...state.messages.values()].filter((m) => m.sender_id !== state.me.id).pop();
  if (last && document.visibilityState === "visible") state.client.read(last.id).catch(() => {});
}

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const content = $("text").value.trim();
  if (!content || !state.room) return;
  $("text").value = "";
  try { await state.client.send(state.room.id, content); } catch (err) { alert(err.message); }
});

$("text").addEventListener("input", () => {
  if (!state.room || Date.now() - state.lastTypingSent < 2000) return;
  state.lastTypingSent = Date.now();
  state.client.typing(state.room.id, true).catch(() => {});
});

function renderTyping() {
  const names = [...state.typing].filter((u) => u !== state.me.id).map(name);
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

// ---------------------------------------------------------------- live events
function wire(client) {
  client.addEventListener("status", (e) => {
    $("status").textContent = e.detail; $("status").dataset.status = e.detail;
    if (e.detail === "connected") loadRooms();
  });
  const here = (f) => state.room && (f.room_id ?? f.data?.room_id) === state.room.id;
  client.addEventListener("event.message.send", async (e) => {
    const f = e.detail;
    if (!here(f)) return loadRooms();
    state.typing.delete(f.data.sender_id); renderTyping();
    await addMessage(f.data, false);
    scrollDown();
    markRead();
  });
  for (const t of ["event.message.edit", "event.message.delete"]) {
    client.addEventListener(t, (e) => {
      const f = e.detail;
      const m = state.messages.get(f.data.message_id ?? f.data.id);
      if (!m) return;
      if (t.endsWith("edit")) Object.assign(m, f.data);
      else { m.deleted_at = f.timestamp; m.content = ""; }
      rerender(m.id);
    });
  }
  for (const t of ["event.message.reaction.add", "event.message.reaction.remove"]) {
    client.addEventListener(t, (e) => {
      const d = e.detail.data;
      const byEmoji = state.reactions.get(d.message_id) ?? new Map();
      state.reactions.set(d.message_id, byEmoji);
      const users = byEmoji.get(d.emoji) ?? new Set();
      byEmoji.set(d.emoji, users);
      t.endsWith("add") ? users.add(d.user_id) : users.delete(d.user_id);
      rerender(d.message_id);
    });
  }
  client.addEventListener("event.message.read", (e) => {
    const d = e.detail.data;
    if (!state.room || d.room_id !== state.room.id) return;
    state.reads.set(d.user_id, d.seq);
    for (const m of state.messages.values()) if (m.sender_id === state.me.id) rerender(m.id);
  });
  client.addEventListener("typing_start", (e) => { if (here(e.detail)) { state.typing.add(e.detail.data.user_id); renderTyping(); } });
  client.addEventListener("typing_stop", (e) => { state.typing.delete(e.detail.data.user_id); renderTyping(); });
  client.addEventListener("user_status_change", (e) => {
    const d = e.detail.data;
    const u = state.users.get(d.user_id);
    if (u) u.status = d.status;
    const dot = document.querySelector(`#members li[data-user="${CSS.escape(d.user_id)}"] .dot`);
    if (dot) dot.dataset.status = d.status;
  });
  for (const t of ["user_join", "user_leave", "event.room.member.add", "event.room.member.remove"]) {
    client.addEventListener(t, (e) => { if (here(e.detail)) loadMembers(); loadRooms(); });
  }
  client.addEventListener("recovered", (e) => { if (!e.detail.recovered && state.room?.id === e.detail.room_id) openRoom(state.room); });
  document.addEventListener("visibilitychange", markRead);
}
