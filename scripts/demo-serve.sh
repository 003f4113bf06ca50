# `scripts/demo --serve`: the pipeline as a service. Sourced by scripts/demo after the
# foundation is laid and verified; sets `status`.
#
# A bare repository stands in for the forge: its post-receive hook sends a push webhook signed
# with the pipeline's secret, as GitHub would. ferry serve listens on 127.0.0.1; alice and bob
# hold approver tokens; qa needs one approval, prod two (the demo asks for it in its copy of
# the manifest).

# The server's state, its tokens and the forge stay with the sandbox, as the ledger does, so
# that the next demo is the next release.
SERVER_HOME="$SANDBOX/server"
FORGE="$SANDBOX/orders.git"
mkdir -p "$SERVER_HOME/state"
# The foundation verify read, so that runs are checked against it before they deploy.
cp "$STATE/foundation.json" "$SERVER_HOME/state/" 2>/dev/null || true
[ -s "$SERVER_HOME/webhook.secret" ] || openssl rand -hex 32 > "$SERVER_HOME/webhook.secret"

python3 - "$MANIFEST" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
text = text.replace("approval: {timeout: 24h, comment_required: true}",
                    "approval: {timeout: 24h, comment_required: true, approvers: [alice, bob], required: 2}")
open(path, "w").write(text)
PY
git -C "$WORKSPACE" -c user.name=ferry-demo -c user.email=demo@ferry.invalid commit -qam "prod needs two approvers"
echo "  (the demo's copy of ferry.yaml asks for two approvers in prod: alice and bob)"

[ -d "$FORGE" ] || git init -q --bare "$FORGE"
cat > "$FORGE/hooks/post-receive" <<HOOK
#!/usr/bin/env bash
# The forge's webhook: a generic push event, signed as GitHub signs (HMAC-SHA256 of the body).
while read -r old new ref; do
  body="{\"ref\": \"\$ref\", \"revision\": \"\$new\", \"pushed_by\": \"demo\"}"
  sig=\$(printf '%s' "\$body" | openssl dgst -sha256 -hmac "\$(cat '$SERVER_HOME/webhook.secret')" | awk '{print \$2}')
  curl -s -X POST "\$(cat '$SERVER_HOME/url')/api/v1/hooks/generic/orders" \
    -H "X-Hub-Signature-256: sha256=\$sig" -H "X-Ferry-Delivery: \$new" -d "\$body"
  echo
done
HOOK
chmod +x "$FORGE/hooks/post-receive"

cat > "$SERVER_HOME/server.yaml" <<YAML
state: state
pipelines:
  - name: orders
    repo: file://$FORGE
    branch: main
    webhook_secret_file: webhook.secret
YAML
# alice and bob approve; with --dashboard, carol watches (a viewer) and ops is an admin.
for who in alice:approver bob:approver carol:viewer ops:admin; do
  name=${who%%:*} role=${who#*:}
  if [ ! -s "$SERVER_HOME/$name.token" ]; then
    # A token is shown once: one whose file is lost is revoked and made anew.
    ferry serve token revoke --config "$SERVER_HOME/server.yaml" --name "$name" >/dev/null 2>&1 || true
    ferry serve token create --config "$SERVER_HOME/server.yaml" --name "$name" --role "$role" 2>/dev/null \
      | tail -1 > "$SERVER_HOME/$name.token"
  fi
done
ALICE=$(cat "$SERVER_HOME/alice.token")
BOB=$(cat "$SERVER_HOME/bob.token")

say "5/6 ferry serve on 127.0.0.1; a git push starts the pipeline; alice and bob approve through the API"
# "$FERRY", not the `ferry` function: a function in the background is a subshell, and $! would
# be the subshell's pid, not the server's.
"$FERRY" serve --config "$SERVER_HOME/server.yaml" --listen 127.0.0.1:0 2> "$SERVER_HOME/serve.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$SERVER_HOME/serve.log" 2>/dev/null | head -1 | sed 's/listening on //' || true)
  [ -n "$url" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$SERVER_HOME/serve.log" >&2; exit 1; }
  sleep 0.1
done
echo "$url" > "$SERVER_HOME/url"
echo "  ferry serve listens on $url (its log: $SERVER_HOME/serve.log)"
export FERRY_SERVER=$url

echo "  git push to $FORGE:"
git -C "$WORKSPACE" push -q --force "$FORGE" HEAD:main 2>&1 | sed 's/^remote: /  forge: /'

# The execution the push started: the newest one at the pushed revision.
pushed=$(git -C "$WORKSPACE" rev-parse HEAD)
execution=""
for _ in $(seq 1 300); do
  execution=$(FERRY_TOKEN=$ALICE ferry status -f "$MANIFEST" --format json 2>/dev/null \
    | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(d["id"] if d.get("revision") == sys.argv[1] else "")' "$pushed" 2>/dev/null || true)
  [ -n "$execution" ] && break
  sleep 0.2
done
if [ -z "$execution" ]; then
  echo "the push started no execution; the server's log:" >&2
  cat "$SERVER_HOME/serve.log" >&2
  exit 1
fi
echo "  the push started $execution"

if [ "${DASHBOARD:-}" = yes ]; then
  echo "$execution" > "$SERVER_HOME/execution"
  say "the dashboard: open $url/executions/$execution and sign in with a token"
  echo "  alice, an approver: $SERVER_HOME/alice.token  (approves qa; prod needs alice and bob)"
  echo "  bob, an approver:   $SERVER_HOME/bob.token"
  echo "  carol, a viewer:    $SERVER_HOME/carol.token"
  echo "  ops, an admin:      $SERVER_HOME/ops.token  (also reads the audit log)"
  echo "  ferry serve runs until Ctrl-C"
  wait "$SERVER" || true
  trap - EXIT
  status=0
  return 0
fi

# The approvers, each with their own token, as each would from a laptop.
approved_by=""
status=1
for _ in $(seq 1 3000); do
  doc=$(FERRY_TOKEN=$ALICE ferry status "$execution" -f "$MANIFEST" --format json 2>/dev/null || true)
  state=$(printf '%s' "$doc" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(d["status"], " ".join(a["stage"] for a in d["pending_approvals"]))' 2>/dev/null || true)
  read -r exec_status stage <<< "$state"
  case "$exec_status" in
    Succeeded) status=0; break ;;
    Failed | Stopped | Superseded) status=1; break ;;
  esac
  if [ -n "${stage:-}" ] && [[ "$approved_by" != *"$stage:"* ]]; then
    FERRY_TOKEN=$ALICE ferry approve "$execution" "$stage" --comment "alice checked $stage" -f "$MANIFEST"
    if [ "$stage" = prod ]; then
      FERRY_TOKEN=$BOB ferry approve "$execution" "$stage" --comment "bob checked $stage too" -f "$MANIFEST"
    fi
    approved_by="$approved_by $stage:"
  fi
  sleep 0.3
done
FERRY_TOKEN=$ALICE ferry status "$execution" -f "$MANIFEST"

say "6/6 the release ledger of each environment, from the server"
for env in dev qa prod; do
  echo "$env:"
  FERRY_TOKEN=$ALICE ferry releases "$env" -f "$MANIFEST" | sed 's/^/  /'
done
kill -TERM "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
trap - EXIT
if [ "$status" -eq 0 ]; then
  say "done: pushed, built, approved by alice (qa) and by alice and bob (prod), released — with no terminal driving it"
fi
