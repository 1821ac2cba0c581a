// A starter server written by nodeops bootstrap: replace it with your app.
const http = require("node:http");

const port = Number(process.env.PORT || 3000);

const server = http.createServer((request, response) => {
  response.writeHead(200, { "content-type": "text/plain" });
  response.end("Hello from nodeops\n");
});

server.listen(port, () => console.log(`listening on port ${port}`));

// Close the server on SIGTERM, so docker stop ends the app at once.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
