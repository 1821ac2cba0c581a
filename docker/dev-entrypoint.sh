#!/bin/sh
# Development entrypoint, written by nodeops: brings the node_modules volume
# in sync with package-lock.json and the node version, then runs the command.
#
# Docker fills a named volume from the image only once, so a changed lock file
# (a new dependency, a branch switch) would otherwise leave a stale tree. The
# stamp records the lock hash and node version of the last complete install.
# It is removed before an install starts, so an interrupted one is redone.
set -eu

modules=/srv/app/node_modules
stamp="$modules/.nodeops-stamp"

# The sync works in the app folder; the command runs where it was started
# (nodeops shell opens in the subfolder the user is in).
workdir=$(pwd)
cd /srv/app

say() { echo "nodeops: $*" >&2; }

# Print the stamp of the current lock file and node, after checking that the
# lock still lists what package.json declares. The check runs before anything
# in the volume changes, so a package.json edited by hand leaves it as it was.
# One node process does both, because every node start delays the command.
check_and_stamp() {
  node -e '
const crypto = require("node:crypto");
const fs = require("node:fs");
const fail = (message) => {
  console.error("nodeops: " + message);
  process.exit(65);
};
let manifest;
let lock;
try {
  manifest = JSON.parse(fs.readFileSync("package.json", "utf8"));
} catch (error) {
  fail("invalid package.json: " + error.message + ": fix it, then run this again");
}
const lockBytes = fs.readFileSync("package-lock.json");
try {
  lock = JSON.parse(lockBytes);
} catch (error) {
  fail("invalid package-lock.json: " + error.message + ": run \x27nodeops lock\x27 to write it again");
}
const root = (lock.packages || {})[""];
if (root) {
  for (const field of ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]) {
    const declared = manifest[field] || {};
    const locked = root[field] || {};
    for (const name of new Set([...Object.keys(declared), ...Object.keys(locked)])) {
      if (declared[name] !== locked[name]) {
        const show = (value) => (value === undefined ? "missing" : JSON.stringify(value));
        fail(
          "package-lock.json does not match package.json: " + field + "." + name + " is " +
          show(declared[name]) + " in package.json but " + show(locked[name]) + " in the lock;" +
          " run \x27nodeops lock\x27 to update the lock (node_modules was left as it was)"
        );
      }
    }
  }
}
console.log("lock " + crypto.createHash("sha256").update(lockBytes).digest("hex"));
console.log("node " + process.version);
'
}

sync_modules() {
  if [ ! -f package.json ]; then
    return 0
  fi
  if [ ! -f package-lock.json ]; then
    if [ "${NODEOPS_RESTAMP:-}" = 1 ]; then
      return 0  # nodeops lock or install is about to create it.
    fi
    say "package-lock.json is missing: run 'nodeops lock' to create it"
    exit 65
  fi
  # set -e does not apply inside $( ), so a failed check is tested here. Before
  # nodeops install or lock, npm install itself rewrites the lock and the tree.
  if [ "${NODEOPS_RESTAMP:-}" = 1 ]; then
    expected=$(check_and_stamp 2>/dev/null) || return 0
  else
    expected=$(check_and_stamp) || exit 65
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$expected" ]; then
    return 0
  fi

  installed_node=$(sed -n 2p "$stamp" 2>/dev/null || true)
  if [ ! -f "$stamp" ]; then
    if [ -n "$(ls -A "$modules" 2>/dev/null)" ]; then
      reason="no record of a complete install"
    else
      reason="the volume is empty"
    fi
  elif [ "$installed_node" != "$(echo "$expected" | sed -n 2p)" ]; then
    reason="node changed from ${installed_node#node } to $(node --version)"
  else
    reason="package-lock.json changed"
  fi

  say "node_modules is out of date ($reason): running npm ci"
  rm -f "$stamp"
  # npm ci checks package.json against the lock before it deletes anything,
  # so a failure there keeps the tree. The stamp stays removed, so the next
  # run tries again.
  if ! npm ci --no-audit --no-fund >&2; then
    say "npm ci failed: if package.json was edited by hand, run 'nodeops lock' to update package-lock.json"
    exit 65
  fi
  echo "$expected" >"$stamp"
  give_to_node
}

finish_install() {
  if ! check_and_stamp >"$stamp"; then
    rm -f "$stamp"
    exit 65
  fi
  give_to_node
}

give_to_node() {
  if [ "$(id -u)" = 0 ]; then
    # Installed as root (nodeops on a root host, or shell --root): give the
    # tree back to the node user that runs the app.
    chown -R node:node "$modules"
  fi
}

# One install at a time: a second command waits here, then finds the stamp
# current. The lock lives in the npm cache volume because npm ci empties
# node_modules, and a lock file that is deleted no longer excludes anyone.
lock=/home/node/.npm/.nodeops-lock
exec 9>>"$lock"
flock 9
if [ "$(id -u)" = 0 ]; then
  chown node:node "$lock"
fi
sync_modules
if [ "${NODEOPS_RESTAMP:-}" = 1 ]; then
  # Set by nodeops install and lock: the command rewrites the lock file and installs
  # the tree itself, so the stamp is written again once it succeeds.
  rm -f "$stamp"
  (cd "$workdir" && "$@")
  finish_install
  exit 0
fi
flock -u 9
exec 9>&-
cd "$workdir"
exec "$@"
