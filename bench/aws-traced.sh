#!/usr/bin/env bash
# The uploader's --aws-cli in the benchmark: runs the real AWS CLI ($BENCH_AWS_CLI) with the
# arguments given and appends one line per process to $BENCH_AWS_TRACE (start, end, exit
# code, the CPU clock ticks of the aws process and its children, and the first two
# arguments), passing its exit code on. The ticks are this shell's reaped children's
# (cutime + cstime in /proc/$$/stat), read without forking: the aws process is the only one.
set -uo pipefail
start=$EPOCHREALTIME
"$BENCH_AWS_CLI" "$@"
rc=$?
read -r stat </proc/$$/stat
read -r -a fields <<<"${stat##*) }"
ticks=$((fields[13] + fields[14]))
printf '%s %s %s %s %s %s\n' "$start" "$EPOCHREALTIME" "$rc" "$ticks" "${1:-}" "${2:-}" \
    >>"$BENCH_AWS_TRACE"
exit "$rc"
