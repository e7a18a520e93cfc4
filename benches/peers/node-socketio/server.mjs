// Peer for the comparison: Node's socket.io with the websocket transport only. Every
// socket joins room "bench"; a "message" event is broadcast to the room (sender included).
//   node server.mjs 8093
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 8093);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => {
  socket.join("bench");
  socket.on("message", (msg) => io.to("bench").emit("message", msg));
});
http.listen(port, "127.0.0.1");
