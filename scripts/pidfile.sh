# shellcheck shell=bash
# PID file helpers for local_run.sh and local_kill.sh. The file holds the PID and
# the process's start time, so a reused PID is never taken for the daemon.

start_time() {
  LC_ALL=C ps -o lstart= -p "$1" 2>/dev/null | sed 's/^ *//'
}

record_pid() {
  local file="$1" pid="$2"
  printf '%s\n%s\n' "${pid}" "$(start_time "${pid}")" >"${file}.tmp"
  mv -f "${file}.tmp" "${file}"
}

# Prints the PID and succeeds only when the recorded process is alive, started at
# the recorded time, belongs to this user and runs awscli_uploader.
daemon_pid() {
  local file="$1" pid started owner
  [ -f "${file}" ] && [ ! -L "${file}" ] || return 1
  { read -r pid && read -r started; } <"${file}" || return 1
  case "${pid}" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "${pid}" 2>/dev/null || return 1
  [ "$(start_time "${pid}")" = "${started}" ] || return 1
  owner="$(ps -o uid= -p "${pid}" | tr -d ' ')"
  [ "${owner}" = "$(id -u)" ] || return 1
  ps -o command= -p "${pid}" | grep -q 'awscli_uploader' || return 1
  printf '%s\n' "${pid}"
}
