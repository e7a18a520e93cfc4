// Peer for the comparison: Node's socket.io with the websocket transport only. Every
// socket joins the room named by the `room` query parameter (default "bench"); a
// "message" event is broadcast to that room (sender included).
//   node server.mjs 8093
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 8093);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => {
  const room = String(socket.handshake.query.room ?? "bench");
  socket.join(room);
  socket.on("message", (msg) => io.to(room).emit("message", msg));
});
http.listen(port, "127.0.0.1");
