#!/usr/bin/env bash
# Stop the daemon that local_run.sh started: SIGTERM, wait, then SIGKILL.
# Only the recorded process is signalled, and only if it is still that daemon.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${AWSCLI_UPLOADER_RUN_DIR:-${repo}/.run}"
pid_file="${run_dir}/daemon.pid"
timeout="${AWSCLI_UPLOADER_STOP_TIMEOUT:-60}"

# shellcheck source=scripts/pidfile.sh
. "${repo}/scripts/pidfile.sh"

if [ ! -e "${pid_file}" ]; then
  echo "local_kill: not running (no ${pid_file})"
  exit 0
fi
if ! pid="$(daemon_pid "${pid_file}")"; then
  rm -f "${pid_file}"
  echo "local_kill: removed a stale PID file; the daemon was not running"
  exit 0
fi
kill -TERM "${pid}"
for _ in $(seq "$((timeout * 10))"); do
  if ! kill -0 "${pid}" 2>/dev/null; then
    rm -f "${pid_file}"
    echo "local_kill: stopped (pid ${pid})"
    exit 0
  fi
  sleep 0.1
done
echo "local_kill: no exit after ${timeout}s; sending SIGKILL" >&2
kill -KILL "${pid}" 2>/dev/null || true
rm -f "${pid_file}"
