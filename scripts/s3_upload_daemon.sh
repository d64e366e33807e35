#!/usr/bin/env bash
# The spec's entry point: runs the Python daemon from this checkout with the same arguments.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" -m awscli_uploader "$@"
