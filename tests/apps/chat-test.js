// The chat's own test: its dependencies load from node_modules in the volume.
const assert = require("node:assert");

assert.strictEqual(typeof require("express"), "function");
assert.strictEqual(typeof require("socket.io").Server, "function");
console.log("chat test passed");
