#!/usr/bin/env bash
# Starts `connect dev` on a fresh data directory and walks the user guide in Chromium
# (walk.mjs). Usage: tests/browser/run.sh [--screenshots]   (needs chromium and npm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The release binary: the one `cargo run --release` and `cargo test --release` build.
cargo build --release --locked --quiet
export CONNECT_TEST_BIN="$CARGO_TARGET_DIR/release/connect"
export CONNECT_DATA_DIR="$(mktemp -d)"
# Each walk sends its own client address, so the per-address limits see different people;
# the header counts only from a trusted proxy, here the walk itself.
export CONNECT_CLIENT_IP_HEADER=x-forwarded-for
export CONNECT_TRUSTED_PROXIES=127.0.0.1
export CONNECT_LOG_LEVEL=warn
if [ "${1:-}" = "--screenshots" ]; then
  export SCREENSHOTS="$root/docs/screenshots"
  rm -rf "$SCREENSHOTS"
fi

(cd "$here" && npm ci --no-audit --no-fund --silent)

"$CONNECT_TEST_BIN" dev > "$CONNECT_DATA_DIR/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$CONNECT_DATA_DIR"' EXIT
# Both servers answer /healthz (node's fetch: no other HTTP client is assumed).
healthy() {
  node -e 'Promise.all(["http://127.0.0.1:8080/healthz", "http://127.0.0.1:8090/healthz"].map((u) => fetch(u).then((r) => { if (!r.ok) throw 0; }))).then(() => process.exit(0), () => process.exit(1))'
}
for _ in $(seq 1 100); do
  healthy && break
  sleep 0.2
done
healthy || { cat "$CONNECT_DATA_DIR/server.log"; exit 1; }

node "$here/walk.mjs" || { echo "--- server log"; tail -50 "$CONNECT_DATA_DIR/server.log"; exit 1; }
