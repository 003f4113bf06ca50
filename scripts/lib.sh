# Shared by scripts/test and scripts/demo. Source it; it defines functions and changes nothing.

FERRY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FERRY_TOOLS="$FERRY_ROOT/.tools"
FERRY_VENV="$FERRY_TOOLS/venv"

say() {
  if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then printf '\033[1m==>\033[0m %s\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# Hermetic AWS settings: static test credentials, a region, and no probe of the instance
# metadata service (169.254.169.254), which is not loopback. Never the user's profile.
ferry_hermetic_aws() {
  export AWS_EC2_METADATA_DISABLED=true
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

# Installs scripts/requirements.txt into .tools/venv once; reinstalls when the file changes.
ferry_ensure_tools() {
  local stamp="$FERRY_VENV/.requirements.sha256"
  local want
  want=$(sha256sum "$FERRY_ROOT/scripts/requirements.txt" | cut -d' ' -f1)
  if [ -x "$FERRY_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "python3 is needed for the AWS emulator (moto); install it first" >&2; return 1; }
  say "installing the test tools (moto AWS emulator) into .tools/venv — once, about a minute"
  rm -rf "$FERRY_VENV"
  python3 -m venv "$FERRY_VENV"
  "$FERRY_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$FERRY_ROOT/scripts/requirements.txt"
  echo "$want" > "$stamp"
}

# Installs checkov (scripts/requirements-checkov.txt) into .tools/checkov, its own virtualenv:
# its pins and moto's do not mix. The synthesized-Terraform test scans with it.
ferry_ensure_checkov() {
  local dir="$FERRY_TOOLS/checkov" stamp="$FERRY_TOOLS/checkov/.requirements.sha256"
  local want
  want=$(sha256sum "$FERRY_ROOT/scripts/requirements-checkov.txt" | cut -d' ' -f1)
  if [ -x "$dir/bin/checkov" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "installing checkov into .tools/checkov — once, about two minutes"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$FERRY_ROOT/scripts/requirements-checkov.txt"
  echo "$want" > "$stamp"
}

# The dashboard's browser tests: Debian's chromium (apt-get, as root) and playwright-core,
# pinned by crates/ferry/tests/browser/package-lock.json, installed with npm ci into
# .tools/browser (outside the source tree, like the other tools).
ferry_ensure_browser() {
  local src="$FERRY_ROOT/crates/ferry/tests/browser" dir="$FERRY_TOOLS/browser" stamp want
  if [ ! -x /usr/bin/chromium ]; then
    [ "$(id -u)" = 0 ] || { echo "the browser tests need Debian's chromium: apt-get install chromium (as root)" >&2; return 1; }
    say "installing Debian's chromium for the browser tests — once, about a minute"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  fi
  command -v npm >/dev/null || { echo "the browser tests need Node.js and npm (20 or later)" >&2; return 1; }
  stamp="$dir/node_modules/.package-lock.sha256"
  want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing playwright-core for the browser tests (npm ci into .tools/browser)"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
    echo "$want" > "$stamp"
  fi
}

# Starts moto on a free loopback port and exports FERRY_TEST_AWS_ENDPOINT; the caller traps
# ferry_stop_moto. Its log goes to .tools/moto.log.
ferry_start_moto() {
  local port
  port=$("$FERRY_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # New ECS services start with one running task (see MOTO_ECS_SERVICE_RUNNING in
  # crates/ferry-test-support): desired 1 is steady at once, desired 2 never by itself.
  MOTO_ECS_SERVICE_RUNNING=1 "$FERRY_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$FERRY_TOOLS/moto.log" 2>&1 &
  FERRY_MOTO_PID=$!
  export FERRY_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
  local i
  for i in $(seq 1 200); do
    if curl -sf -o /dev/null "$FERRY_TEST_AWS_ENDPOINT/moto-api/reset-auth" 2>/dev/null \
       || curl -s -o /dev/null -w '%{http_code}' "$FERRY_TEST_AWS_ENDPOINT/moto-api/reset-auth" 2>/dev/null | grep -q '^[1-5]'; then
      return 0
    fi
    kill -0 "$FERRY_MOTO_PID" 2>/dev/null || { cat "$FERRY_TOOLS/moto.log" >&2; echo "moto did not start" >&2; return 1; }
    sleep 0.1
  done
  echo "moto did not answer on $FERRY_TEST_AWS_ENDPOINT within 20 s" >&2
  return 1
}

ferry_stop_moto() {
  if [ -n "${FERRY_MOTO_PID:-}" ]; then
    kill "$FERRY_MOTO_PID" 2>/dev/null || true
    wait "$FERRY_MOTO_PID" 2>/dev/null || true
    FERRY_MOTO_PID=
  fi
}

# PostgreSQL's server programs (Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin);
# installs Debian's `postgresql` package when there are none (as root).
ferry_postgres_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    [ "$(id -u)" = 0 ] || { echo "the PostgreSQL tests need Debian's postgresql package: apt-get install postgresql" >&2; return 1; }
    say "installing Debian's postgresql for the store tests — once, about a minute"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  fi
  [ -x "$bin/initdb" ] || { echo "no PostgreSQL server programs under /usr/lib/postgresql" >&2; return 1; }
  echo "$bin"
}

# Starts a throwaway PostgreSQL cluster on a free loopback port — initdb into a temporary
# directory, no system service, trust authentication for loopback only, TLS with a
# certificate for IP 127.0.0.1 signed by a CA made for it — and exports FERRY_TEST_POSTGRES (an
# admin URL the tests make their databases with) and FERRY_TEST_POSTGRES_CA (that CA, PEM).
# The caller traps ferry_stop_postgres. PostgreSQL refuses to run as root: as root it runs as
# `postgres`.
ferry_start_postgres() {
  local bin port run_as=()
  bin=$(ferry_postgres_bin) || return 1
  FERRY_PG_DIR=$(mktemp -d /tmp/ferry-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$FERRY_PG_DIR"
    run_as=(runuser -u postgres --)
  fi
  port=$("$FERRY_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ferry_postgres_certificate "$FERRY_PG_DIR" || return 1
  if [ "$(id -u)" = 0 ]; then chown postgres "$FERRY_PG_DIR/server.key"; fi
  "${run_as[@]}" "$bin/initdb" -D "$FERRY_PG_DIR/data" -U ferry --auth=trust -E UTF8 --no-sync >"$FERRY_TOOLS/postgres.log" 2>&1 \
    || { cat "$FERRY_TOOLS/postgres.log" >&2; echo "initdb failed" >&2; return 1; }
  "${run_as[@]}" "$bin/pg_ctl" -D "$FERRY_PG_DIR/data" -l "$FERRY_PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $FERRY_PG_DIR -c fsync=off -c max_connections=300 \
    -c ssl=on -c ssl_cert_file=$FERRY_PG_DIR/server.pem -c ssl_key_file=$FERRY_PG_DIR/server.key" start >>"$FERRY_TOOLS/postgres.log" 2>&1 \
    || { cat "$FERRY_PG_DIR/server.log" >&2; echo "PostgreSQL did not start" >&2; return 1; }
  FERRY_PG_BIN=$bin
  FERRY_PG_RUN_AS=("${run_as[@]}")
  export FERRY_TEST_POSTGRES="postgres://ferry@127.0.0.1:$port/postgres"
  export FERRY_TEST_POSTGRES_CA="$FERRY_PG_DIR/ca.pem"
  # For a test that needs a cluster of its own (one it restarts): the programs, and the
  # user to run them as (empty: this one).
  export FERRY_TEST_PG_BIN="$bin" FERRY_TEST_PG_USER="${run_as[2]:-}"
}

# ferry_postgres_certificate DIR: a CA (DIR/ca.pem) and the server's certificate for IP
# 127.0.0.1 it signs (DIR/server.pem, DIR/server.key), valid for two days.
ferry_postgres_certificate() {
  local dir=$1
  if ! command -v openssl >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "the PostgreSQL tests need openssl: apt-get install openssl" >&2; return 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=ferry test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null \
    && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null \
    && printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext" \
    && openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null \
    && chmod 600 "$dir/server.key" \
    || { echo "openssl could not make the test cluster's certificate" >&2; return 1; }
}

ferry_stop_postgres() {
  if [ -n "${FERRY_PG_DIR:-}" ]; then
    "${FERRY_PG_RUN_AS[@]}" "$FERRY_PG_BIN/pg_ctl" -D "$FERRY_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$FERRY_PG_DIR"
    FERRY_PG_DIR=
  fi
}
