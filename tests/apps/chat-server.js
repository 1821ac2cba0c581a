// A small Socket.IO chat: serves one page and broadcasts every message to all clients.
const path = require("node:path");
const http = require("node:http");
const express = require("express");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const app = express();
const server = http.createServer(app);
const io = new Server(server);

app.get("/", (request, response) => {
  response.sendFile(path.join(__dirname, "index.html"));
});

io.on("connection", (socket) => {
  socket.on("chat message", (text) => io.emit("chat message", String(text)));
});

server.listen(port, () => console.log(`chat listening on port ${port}`));

process.on("SIGTERM", () => {
  console.log("chat shutting down");
  io.close();
  server.close(() => process.exit(0));
});
