#!/bin/sh
# The image's entrypoint: writes the configuration the task was given in its environment
# to files (ECS injects secrets only as variables; ferry reads them only from files), takes the
# secret out of the environment, and runs ferry as PID 1's only child so SIGTERM reaches it.
#
#   FERRY_SERVER_YAML     the server.yaml text          → $FERRY_RUN_DIR/server.yaml
#   FERRY_WEBHOOK_SECRET  the webhooks' shared secret   → $FERRY_RUN_DIR/webhook.secret
#   FERRY_RUN_DIR         where they go (/run/ferry)
set -eu
umask 077
run_dir=${FERRY_RUN_DIR:-/run/ferry}
mkdir -p "$run_dir"
if [ -n "${FERRY_SERVER_YAML:-}" ]; then
    printf '%s\n' "$FERRY_SERVER_YAML" > "$run_dir/server.yaml"
fi
if [ -n "${FERRY_WEBHOOK_SECRET:-}" ]; then
    printf '%s' "$FERRY_WEBHOOK_SECRET" > "$run_dir/webhook.secret"
fi
unset FERRY_WEBHOOK_SECRET FERRY_SERVER_YAML
if [ "$#" -eq 0 ]; then
    set -- serve --config "$run_dir/server.yaml"
fi
exec "${FERRY_BIN:-ferry}" "$@"
