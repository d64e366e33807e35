#!/usr/bin/env bash
# Start the upload daemon in the background on this machine; one at a time.
# Log and PID file live in AWSCLI_UPLOADER_RUN_DIR (default: <repo>/.run, mode 0700).
# Extra arguments go to the daemon, e.g. ./scripts/local_run.sh --interval 30
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${AWSCLI_UPLOADER_RUN_DIR:-${repo}/.run}"
pid_file="${run_dir}/daemon.pid"
log_file="${run_dir}/daemon.log"
root="${S3_ROOT_DIR:-${repo}/output/s3}"
case "${root}" in /*) ;; *) root="${repo}/${root}" ;; esac

# shellcheck source=scripts/pidfile.sh
. "${repo}/scripts/pidfile.sh"

mkdir -p "${run_dir}"
if [ -L "${run_dir}" ] || [ ! -O "${run_dir}" ]; then
  echo "local_run: ${run_dir} is a symlink or not owned by you; remove it and try again" >&2
  exit 1
fi
chmod 700 "${run_dir}"
if pid="$(daemon_pid "${pid_file}")"; then
  echo "local_run: the daemon is already running (pid ${pid}); stop it with scripts/local_kill.sh" >&2
  exit 1
fi
rm -f "${pid_file}"

logged=0
[ -f "${log_file}" ] && logged="$(wc -c <"${log_file}")"
S3_ROOT_DIR="${root}" nohup "${repo}/scripts/s3_upload_daemon.sh" "$@" >>"${log_file}" 2>&1 </dev/null &
pid=$!
record_pid "${pid_file}" "${pid}"
# up to 15 s for its first words (a busy host starts Python slowly): watching, or exited
for _ in $(seq 30); do
  kill -0 "${pid}" 2>/dev/null || break
  tail -c "+$((logged + 1))" "${log_file}" | grep -q -e ' watching ' -e 'waiting for it' && break
  sleep 0.5
done
if ! kill -0 "${pid}" 2>/dev/null; then
  rm -f "${pid_file}"
  echo "local_run: the daemon exited at start; last lines of ${log_file}:" >&2
  tail -n 5 "${log_file}" >&2
  exit 1
fi
echo "local_run: started (pid ${pid}), watching ${root}; log: ${log_file}"
