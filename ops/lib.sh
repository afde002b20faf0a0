# Shared by the ops/ scripts: paths, logging, waiting with a deadline. Source it, don't run it.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.run"                        # pidfiles, kubeconfig, honcho's log (git-ignored)
VENV="$ROOT/.venv"
LOG_DIR="${EDGEWORKERS_LOG_DIR:-/var/log/edgeworkers}"
STATE_DIR="${EDGEWORKERS_STATE_DIR:-/var/lib/edgeworkers}"
ENV_FILE="$ROOT/ops/edgeworkers.env"        # EDGEWORKERS_* settings for the Procfile's processes
AGENT_REDIS_PORT="${EDGEWORKERS_AGENT_REDIS_PORT:-6379}"   # must match EDGEWORKERS_REDIS_URL
TEST_REDIS_PORT="${EDGEWORKERS_TEST_REDIS_PORT:-6399}"     # must match tests/conftest.py
# The agent Redis's memory cap (Redis's maxmemory, policy noeviction: full, it refuses writes and never drops a key).
AGENT_REDIS_MAXMEMORY="${EDGEWORKERS_AGENT_REDIS_MAXMEMORY:-256mb}"
# The agent Redis's password (requirepass): 0600 in a 0700 directory, made by ops/services on its first start.
REDIS_PASSWORD_FILE="${EDGEWORKERS_REDIS_PASSWORD_FILE:-$STATE_DIR/secrets/redis-password}"

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# as_root CMD...: run CMD as root (directly when we are root, else through sudo).
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# wait_for SECONDS WHAT CMD...: poll CMD until it succeeds; fail after SECONDS.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { log "timed out after ${seconds}s waiting for $what"; return 1; }
        sleep 0.2
    done
}

# pid_alive PIDFILE: the process named in PIDFILE is running (a zombie not yet reaped is not).
pid_alive() {
    [[ -s $1 ]] && kill -0 "$(<"$1")" 2>/dev/null && [[ $(ps -o stat= -p "$(<"$1")") != Z* ]]
}

redis_answers() {
    [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# agent_redis_answers: the agent's Redis answers PING given its password (passed in the environment, never argv),
# and refuses a caller without it.
agent_redis_answers() {
    [[ -s $REDIS_PASSWORD_FILE ]] &&
        [[ $(REDISCLI_AUTH="$(<"$REDIS_PASSWORD_FILE")" redis-cli --no-auth-warning -h 127.0.0.1 \
            -p "$AGENT_REDIS_PORT" ping 2>/dev/null) == PONG ]] &&
        ! redis_answers "$AGENT_REDIS_PORT"
}

# ensure_redis_password: the agent Redis's password file (made once) and the config file carrying it, both 0600 in
# 0700 directories. The password never appears on a command line (ps shows those to every user).
ensure_redis_password() {
    local dir
    dir="$(dirname "$REDIS_PASSWORD_FILE")"
    (umask 077 && mkdir -p "$dir")
    chmod 700 "$dir"
    if [[ ! -s $REDIS_PASSWORD_FILE ]]; then
        log "making the agent Redis's password ($REDIS_PASSWORD_FILE)"
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$REDIS_PASSWORD_FILE.new")
        mv "$REDIS_PASSWORD_FILE.new" "$REDIS_PASSWORD_FILE"
    fi
    chmod 600 "$REDIS_PASSWORD_FILE"
    (umask 077 && printf 'requirepass %s\n' "$(<"$REDIS_PASSWORD_FILE")" >"$dir/agent-redis.conf")
}

docker_answers() {
    docker info >/dev/null 2>&1
}

# load_env: export the EDGEWORKERS_* settings the Procfile's processes see, for commands run beside them.
load_env() {
    set -a
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    set +a
}

mkdir -p "$RUN_DIR"
chmod 700 "$RUN_DIR"   # it holds the administrator's kubeconfig
