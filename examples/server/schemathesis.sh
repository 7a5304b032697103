#!/usr/bin/env bash
# schemathesis against the example server's OpenAPI document (/api/openapi.json): once signed in
# as an agent, once as a customer of a room. Fails on any 5xx or any answer that does not match
# the document (every check of the pinned version, `--checks all`).
#
#   examples/server/schemathesis.sh [path/to/collab-server]   (default: build it, debug)
#
# MAX_EXAMPLES (default 50) bounds the examples per operation and phase. The pinned version is
# installed into a venv under ~/.cache when missing (Python 3.11 or later).
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${MAX_EXAMPLES:-50}"
VENV="$HOME/.cache/collab-schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

server="${1:-}"
if [ -z "$server" ]; then
  cargo build --quiet --locked -p collab-server
  server="${CARGO_TARGET_DIR:-target}/debug/collab-server"
fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# The abuse limits off or out of reach: thousands of cases from one session would otherwise meet
# 429s (documented, so allowed) instead of the routes' logic.
COLLAB_AGENTS="schema@example.com:$password" "$server" --addr "127.0.0.1:$port" --data "$work/data" \
  --message-burst 1000000 --upload-burst 1000000 --invite-limits off --sign-in-failures 1000000,1000000 \
  --join-burst 1000000 \
  >"$work/server.log" 2>&1 &
server_pid=$!
stop() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$base/api/openapi.json" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "the server stopped" >&2; exit 1; }
  sleep 0.1
done

# The value of cookie $2 that the answer headers in file $1 set.
cookie() { sed -n "s/^set-cookie: \($2=[^;]*\).*/\1/Ip" "$1" | head -n 1; }
# Field $1 of the JSON on standard input.
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
# The server refuses state changes that name no origin: every request here names the server's.
post() { curl -fsS -H 'content-type: application/json' -H "origin: $base" "$@"; }

# An agent; a room with a customer invited by email, its link, and the customer's session.
post -D "$work/agent.h" -o /dev/null -d "{\"agent\":\"schema@example.com\",\"password\":\"$password\"}" "$base/api/session"
agent="$(cookie "$work/agent.h" collab_agent)"
room="$(post -H "cookie: $agent" -X POST "$base/api/rooms" | field id)"
post -H "cookie: $agent" -o /dev/null \
  -d '{"channel":"email","first_name":"Grace","last_name":"Hopper","identifier":"grace@example.com"}' \
  "$base/api/rooms/$room/invites"
link="$(post -H "cookie: $agent" -d '{"channel":"link"}' "$base/api/rooms/$room/invites" | field link)"
post -D "$work/customer.h" -o /dev/null -d "{\"token\":\"${link##*/}\"}" "$base/api/join"
customer="$(cookie "$work/customer.h" collab_customer)"
[ -n "$agent" ] && [ -n "$customer" ] || { echo "could not sign in or join" >&2; exit 1; }

# The settings, the real room most of the time (so that the operations on a room reach its
# logic instead of answering 404 to a random id), and the session a run acts with, given as the
# document's security scheme: schemathesis then knows it for a credential, and leaves it out of
# the cases that test a missing one (a cookie given as a header would be sent with those too).
config() {
  cat examples/server/schemathesis.toml - <<EOF

[dictionaries.rooms]
values = ["$room"]

[parameters]
"path.room" = { dictionary = "rooms", probability = 0.8 }

[auth.openapi.$1]
api_key = "${2#*=}"
EOF
}
config agent_session "$agent" >"$work/agent.toml"
config customer_session "$customer" >"$work/customer.toml"

total=0
run() {
  local who="$1" as="$2"
  shift 2
  echo "--- schemathesis as $who"
  # From the temp folder: schemathesis keeps a cache of crashes in the current one.
  (cd "$work" && "$VENV/bin/schemathesis" --config-file "$work/$as.toml" --no-color \
    run "$base/api/openapi.json" \
    --checks all --max-examples "$MAX_EXAMPLES" --seed 1 --workers 1 --generation-database none \
    --exclude-path '/api/rooms/{room}/live' -H "origin: $base" --report har --report-har-path "$work/$who.har" \
    "$@") | tee "$work/$who.out"
}
# Fails unless run $1 was answered as role $2 by `GET /api/me` at least once: a run whose session
# was not sent would pass unnoticed otherwise (401 is a documented answer).
acted_as() {
  python3 - "$work/$1.har" "$2" <<'EOF' || { echo "schemathesis as $1 never acted as the $2" >&2; exit 1; }
import json, sys
entries = json.load(open(sys.argv[1]))["log"]["entries"]
def me(entry):
    try:
        return json.loads(entry["response"]["content"]["text"]).get("role")
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
sys.exit(0 if any(e["request"]["url"].endswith("/api/me") and me(e) == sys.argv[2] for e in entries) else 1)
EOF
}
count() {
  # Test cases run, from the summary: "Test cases:" then "  N generated, N passed".
  sed -n '/^Test cases:/{n;s/^ *\([0-9][0-9]*\) generated.*/\1/p;}' "$work/$1.out" | tail -n 1
}

# Live events are an endless stream (server-sent events): a request-response check would only
# time out on it; tests/api.rs checks the stream. Erasing the room (or its customer) ends it for
# the operations after, and signing out ends the agent's session: those run last, in that order.
run agent agent --exclude-method DELETE --exclude-path-regex '/erase$'
# The customer's session, and `x-collab-as` as the customer page sends it (it picks the customer
# in a browser that holds an agent's session too).
run customer customer -H "x-collab-as: customer" --exclude-method DELETE
acted_as agent agent
acted_as customer customer
run agent-erase agent --include-path-regex '/erase$'
run agent-sign-out agent --include-method DELETE
for who in agent customer agent-erase agent-sign-out; do
  total=$((total + $(count "$who" || true)))
done
[ "$total" -gt 0 ] || { echo "schemathesis ran no test case" >&2; exit 1; }
echo "schemathesis: $total test cases, no failure"
