// End-to-end tests of booking-server (seed 003) with the real clients from npm:
// laravel-echo 2 over pusher-js 8 under Node, and pusher-js's browser build in headless
// Chromium (Debian's package, driven by playwright-core). Triggers are signed here the way
// Laravel's pusher-php-server signs them. Two more server processes on one Redis show a
// trigger on one node reaching a client on the other, and presence members across nodes.
//
//   BOOKING_SERVER_BIN=target/debug/booking-server node examples/booking-server/node-tests/e2e.mjs
//
// Every wait is bounded; the servers started here are stopped by their PIDs at the end.
import Echo from "laravel-echo";
import PusherModule from "pusher-js";
import jwt from "jsonwebtoken";
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const Pusher = PusherModule.default ?? PusherModule;
const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.BOOKING_SERVER_BIN ?? join(here, "../../../target/debug/booking-server"));
const APP = { id: "booking-app", key: "booking-key", secret: "booking-test-secret" };
const JWT_SECRET = "booking-e2e-jwt-secret-of-32-bytes-or-more";
const TIMEOUT = 5000;

const freePort = () => new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = [];
async function startServer(extraEnv = {}) {
  const port = await freePort();
  const child = spawn(bin, [], {
    env: {
      ...process.env, BIND: `127.0.0.1:${port}`, RUST_LOG: "warn",
      PUSHER_APP_ID: APP.id, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret, JWT_SECRET,
      ACTIVITY_TIMEOUT_SECS: "1", PING_INTERVAL_SECS: "2", ...extraEnv,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${base}/health`)).ok) return { port, base, child }; } catch {}
    await sleep(50);
  }
  throw new Error(`booking-server did not start on ${port}`);
}

const token = (sub, extra = {}) => jwt.sign({ sub, name: `user ${sub}`, ...extra }, JWT_SECRET, { expiresIn: 600 });

function echoFor(server, sub, options = {}) {
  return new Echo({
    broadcaster: "pusher", Pusher, key: APP.key, cluster: "mt1",
    wsHost: "127.0.0.1", wsPort: server.port, wssPort: server.port, forceTLS: false, enabledTransports: ["ws"],
    authEndpoint: `${server.base}/api/broadcasting/auth`,
    auth: { headers: { Authorization: `Bearer ${token(sub)}` } },
    ...options,
  });
}

/// A promise that settles with `register(resolve)`'s first call, or fails after TIMEOUT.
function waitFor(what, register, ms = TIMEOUT) {
  return new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => { clearTimeout(t); ok(v); });
  });
}

const connected = (echo) => waitFor("connection", (done) => {
  const c = echo.connector.pusher.connection;
  if (c.state === "connected") done(c.socket_id); else c.bind("connected", () => done(c.socket_id));
});

/// A signed HTTP API request, as pusher-php-server makes it.
async function api(server, method, path, body, { secret = APP.secret, timestamp } = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  const params = { auth_key: APP.key, auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)), auth_version: "1.0" };
  if (text) params.body_md5 = createHash("md5").update(text).digest("hex");
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join("&");
  const sig = createHmac("sha256", secret).update(`${method}\n${path}\n${query}`).digest("hex");
  const res = await fetch(`${server.base}${path}?${query}&auth_signature=${sig}`, {
    method, headers: text ? { "content-type": "application/json" } : {}, body: text || undefined,
  });
  return { status: res.status, text: await res.text() };
}
const trigger = (server, channels, name, data, extra = {}) =>
  api(server, "POST", `/apps/${APP.id}/events`, { name, channels, data: JSON.stringify(data), ...extra });

let passed = 0, failed = 0;
const results = [];
async function check(name, fn) {
  try { await fn(); passed++; results.push(`ok   ${name}`); }
  catch (e) { failed++; results.push(`FAIL ${name}: ${e.message.split("\n")[0]}`); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${msg}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
}

const echos = [];
const track = (e) => { echos.push(e); return e; };
let browser;
// The app's webhook receiver: keeps the events of requests whose X-Pusher-Signature checks out.
const hooks = { events: [], badSignatures: 0 };
const hookServer = createHttpServer((req, res) => {
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", () => {
    const sig = createHmac("sha256", APP.secret).update(body).digest("hex");
    if (req.headers["x-pusher-key"] !== APP.key || req.headers["x-pusher-signature"] !== sig) {
      hooks.badSignatures++; res.writeHead(401).end(); return;
    }
    hooks.events.push(...JSON.parse(body).events); res.writeHead(200).end();
  });
});
const hookPort = await new Promise((ok) => hookServer.listen(0, "127.0.0.1", () => ok(hookServer.address().port)));
const hookSeen = (pred, what) => waitFor(what, (done) => {
  const t = setInterval(() => { const e = hooks.events.find(pred); if (e) { clearInterval(t); done(e); } }, 20);
});

try {
  const server = await startServer({ PUSHER_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/pusher/webhooks` });

  await check("Echo connects and gets a socket id like 123.456", async () => {
    const echo = track(echoFor(server, "7"));
    const socketId = await connected(echo);
    assert(/^\d+\.\d+$/.test(socketId), `socket id ${socketId}`);
    eq(echo.socketId(), socketId, "Echo's socketId()");
  });

  await check("a public channel gets Laravel's App\\Events\\AvailabilityUpdated as e.data", async () => {
    const echo = track(echoFor(server, "7"));
    await connected(echo);
    const ch = echo.channel("availability");
    await waitFor("subscribed", (done) => ch.subscribed(done));
    const got = waitFor("AvailabilityUpdated", (done) => ch.listen("AvailabilityUpdated", done));
    const data = { session_id: 1, session_name: "Morning Session", date: "2024-01-15", available_slots: 5, total_capacity: 20 };
    const r = await trigger(server, ["availability"], "App\\Events\\AvailabilityUpdated", { data });
    eq(r.status, 200, `trigger: ${r.text}`);
    eq((await got).data, data, "e.data");
  });

  await check("a private channel through the auth endpoint (form body from pusher-js)", async () => {
    const echo = track(echoFor(server, "7"));
    await connected(echo);
    const ch = echo.private("booking.7");
    await waitFor("subscribed", (done) => ch.subscribed(done));
    const got = waitFor("BookingStatusUpdated", (done) => ch.listen("BookingStatusUpdated", done));
    await trigger(server, ["private-booking.7"], "App\\Events\\BookingStatusUpdated", { data: { booking_id: 1, status: "confirmed" } });
    eq((await got).data.status, "confirmed", "status");
  });

  await check("another user's private-booking channel is refused with 403", async () => {
    const echo = track(echoFor(server, "7"));
    await connected(echo);
    const err = await waitFor("error", (done) => echo.private("booking.8").error(done));
    eq(err.status, 403, "status");
  });

  await check("the auth endpoint: JSON bodies, 401 without or with a bad token", async () => {
    const echo = track(echoFor(server, "7"));
    const socketId = await connected(echo);
    const post = (headers, body) => fetch(`${server.base}/api/broadcasting/auth`, { method: "POST", headers, body });
    const json = JSON.stringify({ socket_id: socketId, channel_name: "private-booking.7" });
    let r = await post({ Authorization: `Bearer ${token("7")}`, "Content-Type": "application/json", Accept: "application/json" }, json);
    eq(r.status, 200, "JSON body");
    const { auth } = await r.json();
    const sig = createHmac("sha256", APP.secret).update(`${socketId}:private-booking.7`).digest("hex");
    eq(auth, `${APP.key}:${sig}`, "the signature of socket_id:channel");
    r = await post({ "Content-Type": "application/json" }, json);
    eq(r.status, 401, "no token");
    r = await post({ Authorization: `Bearer ${jwt.sign({ sub: "7" }, "another-secret-of-32-bytes-at-least!!")}`, "Content-Type": "application/json" }, json);
    eq(r.status, 401, "bad token");
    r = await post({ Authorization: `Bearer ${token("7")}`, "Content-Type": "application/json" }, JSON.stringify({ socket_id: socketId, channel_name: "presence-lobby" }));
    const presence = await r.json();
    eq(JSON.parse(presence.channel_data).user_id, "7", "presence channel_data");
  });

  await check("a forged signature is refused by the server (pusher:subscription_error 401)", async () => {
    const pusher = new Pusher(APP.key, {
      cluster: "mt1", wsHost: "127.0.0.1", wsPort: server.port, forceTLS: false, enabledTransports: ["ws"],
      channelAuthorization: { customHandler: (_params, cb) => cb(null, { auth: `${APP.key}:${"0".repeat(64)}` }) },
    });
    track({ disconnect: () => pusher.disconnect() });
    const ch = pusher.subscribe("private-booking.7");
    const err = await waitFor("subscription_error", (done) => ch.bind("pusher:subscription_error", done));
    eq([err.type, err.status], ["AuthError", 401], "error");
  });

  await check("presence: here, joining and leaving once per user across two connections", async () => {
    const bob = track(echoFor(server, "8"));
    await connected(bob);
    const joined = [], left = [];
    const here = await waitFor("here", (done) => bob.join("lobby").here(done).joining((u) => joined.push(u.id)).leaving((u) => left.push(u.id)));
    eq(here.map((u) => u.id), ["8"], "bob alone");
    const ana1 = track(echoFor(server, "7"));
    const ana2 = track(echoFor(server, "7"));
    await Promise.all([connected(ana1), connected(ana2)]);
    const members1 = await waitFor("ana1 here", (done) => ana1.join("lobby").here(done));
    eq(members1.map((u) => u.id).sort(), ["7", "8"], "ana sees both");
    await waitFor("ana2 here", (done) => ana2.join("lobby").here(done));
    await sleep(300);
    eq(joined, ["7"], "ana joined once");
    ana1.leave("lobby");
    await sleep(300);
    eq(left, [], "ana still present through her second connection");
    ana2.disconnect();
    await waitFor("leaving", (done) => { const t = setInterval(() => { if (left.length) { clearInterval(t); done(); } }, 20); });
    await sleep(200);
    eq(left, ["7"], "ana left once");
  });

  await check("webhooks arrive signed: member_added for Ana, channel_occupied for lobby", async () => {
    const added = await hookSeen((e) => e.name === "member_added" && e.channel === "presence-lobby" && e.user_id === "7", "member_added");
    eq(added.user_id, "7", "user");
    await hookSeen((e) => e.name === "member_removed" && e.channel === "presence-lobby" && e.user_id === "7", "member_removed");
    await hookSeen((e) => e.name === "channel_occupied" && e.channel === "presence-lobby", "channel_occupied");
    eq(hooks.events.filter((e) => e.name === "member_added" && e.channel === "presence-lobby" && e.user_id === "7").length, 1, "member_added once");
    eq(hooks.badSignatures, 0, "bad signatures");
  });

  await check("client events (whisper) reach the others, not the sender", async () => {
    const a = track(echoFor(server, "7"));
    const b = track(echoFor(server, "8"));
    await Promise.all([connected(a), connected(b)]);
    const cha = a.join("room.1"), chb = b.join("room.1");
    await Promise.all([waitFor("a here", (d) => cha.here(d)), waitFor("b here", (d) => chb.here(d))]);
    let echoed = false;
    cha.listenForWhisper("typing", () => { echoed = true; });
    const got = waitFor("whisper", (done) => chb.listenForWhisper("typing", done));
    cha.whisper("typing", { name: "ana" });
    eq((await got).name, "ana", "whisper data");
    await sleep(300);
    assert(!echoed, "the sender got its own whisper");
    const hook = await hookSeen((e) => e.name === "client_event" && e.channel === "presence-room.1", "client_event webhook");
    eq([hook.event, hook.user_id, JSON.parse(hook.data).name], ["client-typing", "7", "ana"], "client_event webhook");
  });

  await check("after leave, no more events", async () => {
    const echo = track(echoFor(server, "7"));
    await connected(echo);
    const ch = echo.channel("staff");
    await waitFor("subscribed", (done) => ch.subscribed(done));
    let count = 0;
    ch.listen("CheckInNotification", () => count++);
    await trigger(server, ["staff"], "App\\Events\\CheckInNotification", { data: { booking_id: 1 } });
    await waitFor("first event", (done) => { const t = setInterval(() => { if (count) { clearInterval(t); done(); } }, 20); });
    echo.leave("staff");
    await sleep(200);
    await trigger(server, ["staff"], "App\\Events\\CheckInNotification", { data: { booking_id: 2 } });
    await sleep(400);
    eq(count, 1, "events after leave");
  });

  await check("keep-alive: pings both ways, the connection stays (no reconnect) for 4 s", async () => {
    const echo = track(echoFor(server, "7"));
    const socketId = await connected(echo);
    const conn = echo.connector.pusher.connection;
    let pongs = 0, states = [];
    conn.bind("message", (m) => { if (m.event === "pusher:pong" || m.event === "pusher:ping") pongs++; });
    conn.bind("state_change", (s) => states.push(s.current));
    await sleep(4000);
    eq(conn.state, "connected", "state");
    eq(conn.socket_id, socketId, "same socket");
    eq(states, [], "no state change");
    assert(pongs >= 1, `heartbeats seen: ${pongs}`);
  });

  await check("pusher.signin() through /api/broadcasting/user-auth, then terminate_connections closes it (4009, no reconnect)", async () => {
    const pusher = new Pusher(APP.key, {
      cluster: "mt1", wsHost: "127.0.0.1", wsPort: server.port, forceTLS: false, enabledTransports: ["ws"],
      userAuthentication: { endpoint: `${server.base}/api/broadcasting/user-auth`, transport: "ajax", headers: { Authorization: `Bearer ${token("42")}` } },
    });
    track({ disconnect: () => pusher.disconnect() });
    const signedIn = waitFor("signin_success", (done) => pusher.connection.bind("message", (m) => { if (m.event === "pusher:signin_success") done(m); }));
    pusher.signin();
    await signedIn;
    await hookSeen((e) => e.name === "user_online" && e.user_id === "42", "user_online webhook");
    const closed = waitFor("close 4009", (done) => pusher.connection.bind("error", (e) => { if (e?.error?.data?.code === 4009) done(); }));
    const r = await api(server, "POST", `/apps/${APP.id}/users/42/terminate_connections`, {});
    eq(r.status, 200, r.text);
    await closed;
    await hookSeen((e) => e.name === "user_offline" && e.user_id === "42", "user_offline webhook");
    await sleep(500);
    assert(pusher.connection.state !== "connected", `state ${pusher.connection.state}`);
  });

  await check("the HTTP API refuses a wrong or stale signature with 401", async () => {
    let r = await trigger(server, ["availability"], "X", {}, {});
    eq(r.status, 200, "good");
    r = await api(server, "POST", `/apps/${APP.id}/events`, { name: "X", channels: ["a"], data: "{}" }, { secret: "wrong" });
    eq(r.status, 401, "wrong secret");
    r = await api(server, "POST", `/apps/${APP.id}/events`, { name: "X", channels: ["a"], data: "{}" }, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    eq(r.status, 401, "stale");
    assert(r.text.includes("auth_timestamp"), r.text);
    r = await api(server, "GET", `/apps/${APP.id}/channels`);
    eq(r.status, 200, `channels: ${r.text}`);
  });

  await check("the README's trigger.sh (curl + openssl) reaches an Echo listener", async () => {
    const echo = track(echoFor(server, "7"));
    await connected(echo);
    const ch = echo.channel("admin");
    await waitFor("subscribed", (done) => ch.subscribed(done));
    const got = waitFor("NewBookingNotification", (done) => ch.listen("NewBookingNotification", done));
    const script = join(here, "../trigger.sh");
    const run = spawn("bash", [script, "admin", "App\\Events\\NewBookingNotification", '{"data":{"booking_code":"BK001"}}'], {
      env: { ...process.env, PUSHER_URL: server.base, PUSHER_APP_ID: APP.id, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const code = await waitFor("trigger.sh", (done) => run.on("exit", done));
    eq(code, 0, "trigger.sh exit code");
    eq((await got).data.booking_code, "BK001", "e.data");
  });

  await check("an unknown app key gets pusher:error 4001 and no reconnect", async () => {
    const pusher = new Pusher("wrong-key", { cluster: "mt1", wsHost: "127.0.0.1", wsPort: server.port, forceTLS: false, enabledTransports: ["ws"] });
    track({ disconnect: () => pusher.disconnect() });
    const err = await waitFor("error", (done) => pusher.connection.bind("error", done));
    eq(err.error?.data?.code, 4001, "code");
    await sleep(500);
    assert(["disconnected", "failed", "unavailable"].includes(pusher.connection.state), `state ${pusher.connection.state}`);
  });

  await check("headless Chromium: pusher-js's browser build joins a private channel and gets a trigger", async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    });
    const page = await browser.newPage();
    await page.addScriptTag({ path: join(here, "node_modules/pusher-js/dist/web/pusher.min.js") });
    const socketId = await page.evaluate(({ key, port, base, jwt }) => new Promise((ok, fail) => {
      setTimeout(() => fail(new Error("browser timed out")), 5000);
      const p = new Pusher(key, {
        cluster: "mt1", wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"],
        channelAuthorization: { endpoint: `${base}/api/broadcasting/auth`, transport: "ajax", headers: { Authorization: `Bearer ${jwt}` } },
      });
      window.got = new Promise((r) => {
        const ch = p.subscribe("private-booking.9");
        ch.bind("App\\Events\\PaymentStatusUpdated", r);
        ch.bind("pusher:subscription_succeeded", () => ok(p.connection.socket_id));
        ch.bind("pusher:subscription_error", (e) => fail(new Error(JSON.stringify(e))));
      });
    }), { key: APP.key, port: server.port, base: server.base, jwt: token("9") });
    assert(/^\d+\.\d+$/.test(socketId), socketId);
    await trigger(server, ["private-booking.9"], "App\\Events\\PaymentStatusUpdated", { data: { booking_id: 9, payment_status: "verified" } });
    const got = await page.evaluate(() => Promise.race([window.got, new Promise((_, f) => setTimeout(() => f(new Error("no event")), 5000))]));
    eq(got.data.payment_status, "verified", "event in the browser");
  });

  // Two nodes on one Redis (a fresh prefix per run).
  const redisEnv = { REDIS_URL: "redis://127.0.0.1:6379", REDIS_PREFIX: `booking-e2e-${randomBytes(4).toString("hex")}:` };
  let nodeA, nodeB;
  try {
    nodeA = await startServer(redisEnv);
    nodeB = await startServer(redisEnv);
  } catch (e) {
    if (process.env.REALTIME_REQUIRE_SERVICES === "1") throw e;
    console.log(`skipping the two-node checks: ${e.message} (is Redis running on 127.0.0.1:6379?)`);
  }
  if (nodeA && nodeB) {
    await check("two nodes on Redis: a trigger on node A reaches a client on node B", async () => {
      const echo = track(echoFor(nodeB, "7"));
      await connected(echo);
      const ch = echo.channel("availability");
      await waitFor("subscribed", (done) => ch.subscribed(done));
      const got = waitFor("event across nodes", (done) => ch.listen("CapacityUpdated", done));
      const r = await trigger(nodeA, ["availability"], "App\\Events\\CapacityUpdated", { data: { session_id: 4, current_capacity: 15 } });
      eq(r.status, 200, r.text);
      eq((await got).data.current_capacity, 15, "data");
    });

    await check("two nodes on Redis: one member per user across nodes", async () => {
      const watcher = track(echoFor(nodeA, "8"));
      await connected(watcher);
      const joined = [], left = [];
      await waitFor("here", (d) => watcher.join("nodes").here(d).joining((u) => joined.push(u.id)).leaving((u) => left.push(u.id)));
      const onA = track(echoFor(nodeA, "7")), onB = track(echoFor(nodeB, "7"));
      await Promise.all([connected(onA), connected(onB)]);
      await waitFor("A here", (d) => onA.join("nodes").here(d));
      const seen = await waitFor("B here", (d) => onB.join("nodes").here(d));
      eq(seen.map((u) => u.id).sort(), ["7", "8"], "members seen on node B");
      await sleep(300);
      eq(joined, ["7"], "joined once");
      onA.disconnect();
      await sleep(400);
      eq(left, [], "still present on node B");
      onB.disconnect();
      await waitFor("leaving", (done) => { const t = setInterval(() => { if (left.length) { clearInterval(t); done(); } }, 20); });
      eq(left, ["7"], "left once");
    });
  }
} finally {
  for (const e of echos) { try { e.disconnect(); } catch {} }
  if (browser) await browser.close().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  hookServer.close();
  for (const r of results) console.log(r);
  console.log(`booking-server e2e: ${passed} passed, ${failed} failed`);
  setTimeout(() => process.exit(failed || !passed ? 1 : 0), 100);
}
