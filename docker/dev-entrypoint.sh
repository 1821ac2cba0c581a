#!/bin/sh
# Development entrypoint, written by nodeops: brings the node_modules volume
# in sync with package-lock.json and the node version, then runs the command.
#
# Docker fills a named volume from the image only once, so a changed lock file
# (a new dependency, a branch switch) would otherwise leave a stale tree. The
# stamp records the lock hash and node version of the last complete install;
# it is removed before an install starts, so an interrupted one is redone.
set -eu

modules=/srv/app/node_modules
stamp="$modules/.nodeops-stamp"

say() { echo "nodeops: $*" >&2; }

expected_stamp() {
  echo "lock $(sha256sum package-lock.json | cut -d ' ' -f 1)"
  echo "node $(node --version)"
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
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(expected_stamp)" ]; then
    return 0
  fi
  if [ ! -f "$stamp" ]; then
    if [ -n "$(ls -A "$modules" 2>/dev/null)" ]; then
      reason="no record of a complete install"
    else
      reason="the volume is empty"
    fi
  elif [ "$(sed -n 2p "$stamp")" != "node $(node --version)" ]; then
    reason="node changed from $(sed -n 2p "$stamp" | cut -d ' ' -f 2) to $(node --version)"
  else
    reason="package-lock.json changed"
  fi
  say "node_modules is out of date ($reason): running npm ci"
  rm -f "$stamp"
  # npm ci checks package.json against the lock before it deletes anything,
  # so a lock that is out of sync leaves the volume as it was.
  if ! npm ci --no-audit --no-fund >&2; then
    say "npm ci failed: if package.json was edited by hand, run 'nodeops lock' to update package-lock.json"
    exit 65
  fi
  finish_install
}

finish_install() {
  expected_stamp >"$stamp"
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
  "$@"
  finish_install
  exit 0
fi
flock -u 9
exec 9>&-
exec "$@"
