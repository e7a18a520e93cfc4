// realtime-client.js — the reference client for the realtime chat server.
// One small ES module, no dependencies: the public REST API (/api/v1) and the native
// WebSocket dialect (/ws). See README.md beside this file.

/** Raised for failed REST calls and `error` replies to commands. */
export class RealtimeError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;      // e.g. "forbidden", "not_found", "rate_limited"
    this.status = status;  // HTTP status for REST errors
  }
}

async function rest(baseUrl, token, method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${baseUrl}/api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new RealtimeError(json?.kind ?? "http_error", json?.details ?? res.statusText, res.status);
  return json;
}

/** Register a user: POST /api/v1/users. */
export function register(baseUrl, username, password) {
  return rest(baseUrl, null, "POST", "/users", { username, password });
}

/** Log in: POST /api/v1/auth/login → { token, user }. */
export function login(baseUrl, username, password) {
  return rest(baseUrl, null, "POST", "/auth/login", { username, password });
}

/**
 * A connection to the server. Events (listen with addEventListener):
 * - "status": detail = "connecting" | "connected" | "reconnecting" | "offline"
 * - every push frame under its `type`: "event.message.send", "typing_start",
 *   "user_status_change", "user_join", "event.message.reaction.add", … ; detail = the frame
 *   (seed 000's Event Data Structure: {id, type, level, action, data, metadata, timestamp,
 *   user_id, room_id}).
 * - "recovered": detail = {room_id, recovered, replayed} after a rejoin with `since`;
 *   `recovered: false` means history could not be replayed: reload the room.
 */
export class RealtimeClient extends EventTarget {
  constructor({ baseUrl = location.origin, token }) {
    super();
    this.baseUrl = baseUrl;
    this.token = token;
    this.status = "offline";
    this.rooms = new Map(); // room_id -> { seq, epoch }
    this._pending = new Map();
    this._nextId = 1;
    this._retry = 0;
    this._closed = false;
  }

  /** A REST call with this client's token. */
  api(method, path, body) {
    return rest(this.baseUrl, this.token, method, path, body);
  }

  _setStatus(s) {
    this.status = s;
    this.dispatchEvent(new CustomEvent("status", { detail: s }));
  }

  /** Open the WebSocket; reconnects by itself until close(). */
  connect() {
    this._closed = false;
    this._setStatus(this._retry ? "reconnecting" : "connecting");
    // resume=1: the server subscribes this connection to a room only when it joins it,
    // and then sends the missed messages before any live one (see _onFrame).
    const url = this.baseUrl.replace(/^http/, "ws") + "/ws?resume=1&token=" + encodeURIComponent(this.token);
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => this._onFrame(JSON.parse(e.data));
    ws.onclose = (e) => {
      for (const [, p] of this._pending) p.reject(new RealtimeError("disconnected", "connection closed"));
      this._pending.clear();
      // 4001 unauthorized, 4003 kicked, 4009 too many connections, 4029 rate limited: do not retry.
      if (this._closed || [4001, 4003, 4009, 4029].includes(e.code)) return this._setStatus("offline");
      this._setStatus("reconnecting");
      const delay = Math.min(10000, 500 * 2 ** this._retry++) * (0.5 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this._closed = true;
    this.ws?.close();
  }

  _onFrame(f) {
    if (f.type === "auth") {
      this._retry = 0;
      this._setStatus("connected");
      // App-wide presence: servers with AUTO_SUBSCRIBE_PRESENCE=false send it only to
      // clients that ask (a no-op where every connection already gets it).
      this.request("subscribe", { channel: "presence" }).catch(() => {});
      // Rejoin every room, asking for what was missed.
      for (const [room_id, pos] of this.rooms) {
        const since = pos.epoch ? { seq: pos.seq, epoch: pos.epoch } : undefined;
        this.request("join", { room_id, since }).then((ack) => {
          if (ack.epoch) this.rooms.set(room_id, { seq: Math.max(pos.seq, ack.latest_seq ?? 0) , epoch: ack.epoch });
          this.dispatchEvent(new CustomEvent("recovered", { detail: { room_id, ...ack } }));
        }).catch(() => {});
      }
      return;
    }
    if ((f.type === "ack" || f.type === "error") && this._pending.has(f.id)) {
      const p = this._pending.get(f.id);
      this._pending.delete(f.id);
      return f.type === "ack" ? p.resolve(f.data) : p.reject(new RealtimeError(f.data.code, f.data.message));
    }
    if (f.type === "event.message.send" && f.data?.room_id) {
      const pos = this.rooms.get(f.data.room_id);
      if (pos && f.data.seq > pos.seq) pos.seq = f.data.seq;
    }
    this.dispatchEvent(new CustomEvent(f.type, { detail: f }));
  }

  /** Send a command; resolves with the ack's data, rejects with a RealtimeError. */
  request(type, data) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        return reject(new RealtimeError("disconnected", "not connected"));
      }
      const id = this._nextId++;
      this._pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  /** Join (or re-subscribe to) a room; later reconnects recover from the last seq seen. */
  async join(room_id) {
    const ack = await this.request("join", { room_id });
    this.rooms.set(room_id, { seq: ack.latest_seq ?? 0, epoch: ack.epoch });
    return ack;
  }

  send(room_id, content) {
    const client_id = (crypto.randomUUID?.() ?? String(Date.now() + Math.random())).replace(/[^A-Za-z0-9-]/g, "");
    return this.request("send", { room_id, content, client_id });
  }
  edit(message_id, content) { return this.request("edit", { message_id, content }); }
  remove(message_id) { return this.request("delete", { message_id }); }
  react(message_id, emoji, remove = false) { return this.request("react", { message_id, emoji, remove }); }
  read(message_id) { return this.request("read", { message_id }); }
  typing(room_id, is_typing) { return this.request("typing", { room_id, is_typing }); }
  presence(status) { return this.request("presence", { status }); }
  /** Older messages: { messages (oldest first), has_more }. */
  history(room_id, before, limit = 30) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before) q.set("before", String(before));
    return this.api("GET", `/rooms/${encodeURIComponent(room_id)}/messages?${q}`);
  }
}
