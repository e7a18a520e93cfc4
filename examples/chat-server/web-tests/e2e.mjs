// End-to-end test of the web client in a real browser: headless Chromium (Debian's
// package) driven by playwright-core. Two browser contexts, two users; checks that a
// message, a typing indicator, a reaction, a read receipt and presence go live from one
// to the other. Saves screenshots to web-tests/screenshots/.
//
//   CHAT_SERVER_BIN=target/debug/chat-server node examples/chat-server/web-tests/e2e.mjs
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.CHAT_SERVER_BIN ?? join(here, "../../../target/debug/chat-server"));
const shots = join(here, "screenshots");
mkdirSync(shots, { recursive: true });

const port = await new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
});
const base = `http://127.0.0.1:${port}`;
const server = spawn(bin, [], {
  env: { ...process.env, BIND: `127.0.0.1:${port}`, DATABASE_URL: "sqlite::memory:", RUST_LOG: "warn",
         JWT_SECRET: "browser-test-secret-of-32-bytes-long!!", PRESENCE_GRACE_MS: "300" },
  stdio: ["ignore", "inherit", "inherit"],
});
for (let i = 0; i < 200; i++) {
  try { if ((await fetch(`${base}/health/live`)).ok) break; } catch {}
  await new Promise((r) => setTimeout(r, 50));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync"],
});
let passed = 0, failed = 0;
const results = [];
async function check(name, fn) {
  try { await fn(); passed++; results.push(`ok   ${name}`); }
  catch (e) { failed++; results.push(`FAIL ${name}: ${e.message.split("\n")[0]}`); throw e; }
}

const timeout = 5000;
let a, b, ctxB;
try {
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 650 } });
  ctxB = await browser.newContext({ viewport: { width: 1100, height: 650 } });
  a = await ctxA.newPage();
  b = await ctxB.newPage();
  for (const [p, who] of [[a, "alice"], [b, "bob"]]) {
    await check(`${who} registers and logs in`, async () => {
      await p.goto(base);
      await p.fill("#username", who);
      await p.fill("#password", `${who}-password`);
      await p.click("#register-btn");
      await p.waitForSelector("#app:not([hidden])", { timeout });
      await p.waitForSelector('#status[data-status="connected"]', { timeout });
    });
  }
  let roomId;
  await check("alice creates a room", async () => {
    await a.fill("#new-room", "General");
    await a.click("#create-room-form button");
    await a.waitForSelector('#room-title:text("General")', { timeout });
    roomId = (await a.textContent("#room-id")).trim();
    if (!roomId) throw new Error("no room id shown");
  });
  await check("bob joins it by id", async () => {
    await b.fill("#join-room-id", roomId);
    await b.click("#join-room-form button");
    await b.waitForSelector('#room-title:text("General")', { timeout });
  });
  await check("presence: alice sees bob online", async () => {
    await a.waitForSelector('#members li:has-text("bob") .dot[data-status="online"]', { timeout });
  });
  await check("a message goes live from alice to bob", async () => {
    await a.fill("#text", "hello bob");
    await a.press("#text", "Enter");
    await b.waitForSelector('.msg .text:text("hello bob")', { timeout });
  });
  await check("a typing indicator goes live from bob to alice", async () => {
    await b.type("#text", "hi al", { delay: 30 });
    await a.waitForSelector('#typing:text("bob is typing")', { timeout });
    await a.screenshot({ path: join(shots, "alice-typing.png") });
  });
  await check("a reaction goes live from bob to alice", async () => {
    const msg = b.locator('.msg:has(.text:text("hello bob"))');
    await msg.hover();
    await msg.locator(".react-btn").click();
    await a.waitForSelector('.msg:has(.text:text("hello bob")) .reaction:text("👍 1")', { timeout });
  });
  await check("a read receipt goes live from bob to alice", async () => {
    await a.waitForSelector('.msg:has(.text:text("hello bob")) .receipt:text("read by bob")', { timeout });
  });
  await check("bob's message reaches alice and stops his typing", async () => {
    await b.press("#text", "Enter");
    await a.waitForSelector('.msg .text:text("hi al")', { timeout });
    await a.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout });
  });
  await a.screenshot({ path: join(shots, "alice.png") });
  await b.screenshot({ path: join(shots, "bob.png") });
  await check("an edit goes live", async () => {
    a.once("dialog", (d) => d.accept("hello bob (edited)"));
    const msg = a.locator('.msg:has(.text:text("hello bob"))');
    await msg.hover();
    await msg.locator('button:text("edit")').click();
    await b.waitForSelector('.msg .text:text("hello bob (edited)")', { timeout });
    await b.waitForSelector('.msg:has(.text:text("hello bob (edited)")) .edited', { timeout });
  });
  await check("a delete goes live as a tombstone", async () => {
    const msg = b.locator('.msg:has(.text:text("hi al"))');
    await msg.hover();
    await msg.locator('button:text("delete")').click();
    await a.waitForSelector('.msg.deleted .text:text("message deleted")', { timeout });
  });
  await check("older history loads on scroll", async () => {
    const { token } = await (await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "alice", password: "alice-password" }) })).json();
    for (let i = 0; i < 40; i++) {
      await fetch(`${base}/api/v1/messages`, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ room_id: roomId, content: `filler ${i}` }) });
    }
    await b.reload();
    await b.fill("#username", "bob");
    await b.fill("#password", "bob-password");
    await b.click("#login-btn");
    await b.click(`#rooms li[data-room="${roomId}"]`);
    await b.waitForSelector('.msg .text:text("filler 39")', { timeout });
    if (await b.locator('.msg .text:text("filler 0")').count()) throw new Error("the first page should not hold everything");
    await b.evaluate(() => { document.getElementById("messages").scrollTop = 0; document.getElementById("messages").dispatchEvent(new Event("scroll")); });
    await b.waitForSelector('.msg .text:text("filler 0")', { timeout });
  });
  await check("the client reconnects by itself with a visible status", async () => {
    await b.evaluate(() => {
      window.__seen = [];
      window.realtime.addEventListener("status", (e) => window.__seen.push(e.detail));
      window.realtime.ws.close(); // the connection drops
    });
    await b.waitForSelector('#status[data-status="reconnecting"]', { timeout });
    await b.waitForSelector('#status[data-status="connected"]', { timeout });
    const seen = await b.evaluate(() => window.__seen);
    if (!seen.includes("reconnecting") || seen.at(-1) !== "connected") throw new Error(`status went ${seen}`);
    await a.fill("#text", "after the reconnect");
    await a.press("#text", "Enter");
    await b.waitForSelector('.msg .text:text("after the reconnect")', { timeout });
  });
  await check("presence: alice sees bob go offline when he leaves", async () => {
    await ctxB.close();
    await a.waitForSelector('#members li:has-text("bob") .dot[data-status="offline"]', { timeout });
  });
} catch (e) {
  if (a) await a.screenshot({ path: join(shots, "failure-alice.png") }).catch(() => {});
  if (b) await b.screenshot({ path: join(shots, "failure-bob.png") }).catch(() => {});
} finally {
  await browser.close();
  server.kill();
}
console.log(results.join("\n"));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
