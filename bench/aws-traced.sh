#!/usr/bin/env bash
# The uploader's --aws-cli in the benchmark: runs the real AWS CLI ($BENCH_AWS_CLI) with the
# arguments given and appends one line per process to $BENCH_AWS_TRACE (start, end, exit
# code and the first two arguments), passing its exit code on.
set -uo pipefail
start=$EPOCHREALTIME
"$BENCH_AWS_CLI" "$@"
rc=$?
printf '%s %s %s %s %s\n' "$start" "$EPOCHREALTIME" "$rc" "${1:-}" "${2:-}" >>"$BENCH_AWS_TRACE"
exit "$rc"
