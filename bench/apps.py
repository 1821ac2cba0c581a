"""The benchmark's Node apps, bootstrapped with nodeops in folders of their own."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .engine import run

#: Real npm packages. The large app's development toolchains bring a few
#: hundred packages, as in a typical project; both apps serve with express.
SMALL_DEPENDENCIES = {"express": "^4.21.2"}
LARGE_DEPENDENCIES = {"express": "^4.21.2", "axios": "^1.7.9", "lodash": "^4.17.21"}
LARGE_DEV_DEPENDENCIES = {
    "jest": "^29.7.0",
    "eslint": "^9.17.0",
    "typescript": "^5.7.2",
    "webpack": "^5.97.1",
}

#: The package added and removed to change the lock file in the stale-volume run.
TOGGLED_PACKAGE = "ms"

SERVER = """\
const express = require("express");

const port = Number(process.env.PORT || 3000);
const app = express();
app.get("/", (request, response) => response.send("ok\\n"));
const server = app.listen(port, () => console.log(`listening on port ${port}`));
"""

HANDLER = """
// Close the server on SIGTERM, so docker stop ends the app at once.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
"""

# Requires every production dependency, so a node_modules tree that misses
# one (a stale volume) fails the test.
TEST = """\
const manifest = require("./package.json");
for (const name of Object.keys(manifest.dependencies || {})) {
  require(name);
}
console.log("ok");
"""


@dataclass
class App:
    """A bootstrapped app folder; its folder name is its compose project name."""

    kind: str
    directory: Path
    #: Image tags the benchmark built for this app, removed at the end.
    images: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.directory.name

    def tag(self, suffix: str) -> str:
        tag = f"{self.name}:{suffix}"
        if tag not in self.images:
            self.images.append(tag)
        return tag


def create_app(root: Path, kind: str) -> App:
    """Write package.json and the server of a ``small`` or ``large`` app in a new folder."""
    directory = root / f"nodeops-bench-{kind}-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    manifest = {
        "name": directory.name,
        "version": "1.0.0",
        "private": True,
        "main": "index.js",
        "scripts": {"start": "node index.js", "test": "node test.js"},
        "dependencies": SMALL_DEPENDENCIES if kind == "small" else LARGE_DEPENDENCIES,
        "devDependencies": {} if kind == "small" else LARGE_DEV_DEPENDENCIES,
    }
    (directory / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (directory / "index.js").write_text(SERVER + HANDLER, encoding="utf-8")
    (directory / "index-no-handler.js").write_text(SERVER, encoding="utf-8")
    (directory / "test.js").write_text(TEST, encoding="utf-8")
    return App(kind, directory)


def bootstrap(app: App, nodeops: str, node_version: str) -> None:
    """Run ``nodeops bootstrap``, which writes the Docker files and installs the lock file."""
    run([nodeops, "bootstrap", "--node-version", node_version], cwd=app.directory)


def save_lock_state(app: App) -> dict[str, str]:
    """Return the current package.json and package-lock.json texts."""
    return {
        name: (app.directory / name).read_text(encoding="utf-8")
        for name in ("package.json", "package-lock.json")
    }


def restore_lock_state(app: App, state: dict[str, str]) -> None:
    for name, text in state.items():
        (app.directory / name).write_text(text, encoding="utf-8")


def bump_lock_version(app: App, version: str) -> None:
    """Set the package version in package.json and the lock file, which changes the lock's bytes.

    npm ci accepts the pair because both files agree, and the production
    dependency layer is rebuilt because its input (the lock file) changed.
    """
    manifest_path = app.directory / "package.json"
    lock_path = app.directory / "package-lock.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    manifest["version"] = version
    lock["version"] = version
    lock.get("packages", {}).get("", {})["version"] = version
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    lock_path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
