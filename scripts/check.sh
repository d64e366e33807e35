#!/usr/bin/env bash
# The one quality gate, the same on a laptop and in CI: lint, types, shell scripts, tests.
# Arguments go to pytest (e.g. scripts/check.sh -k uploader; -n 0 runs the tests serially).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
# the layers contract in pyproject.toml; by module, like the tools above (a console script
# that pip just installed may have no pyenv shim yet)
python3 -c 'import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())' \
  --no-cache
# the floor requires-python declares, every line of the package (mypy can't target 3.9):
# 3.10-only calls such as zip(strict=True), match, itertools.pairwise; tests/test_py39.py
# runs the decision tests and a real drain on a 3.9 interpreter
python3 -c 'import sys; from vermin import main; sys.exit(main())' \
  -t=3.9- --violations --no-tips -q awscli_uploader
if command -v shellcheck >/dev/null 2>&1; then
  find scripts infra bench -name node_modules -prune -o -name '*.sh' -type f -print0 \
    | xargs -0 -r shellcheck -x -S warning
elif [ "${CI:-}" = "true" ]; then
  echo "check: shellcheck is missing (apt-get install shellcheck)" >&2
  exit 1
else
  echo "check: shellcheck not installed; shell scripts not checked" >&2
fi
# Most of a test's time is spent waiting (stability windows, retries, timeouts, other
# processes), so more workers than cores keep both cores busy; each worker has its own servers.
# loadgroup: the tests of one xdist_group (the jsii modules; a module-scoped fixture's users)
# share one worker. 6 workers: as fast as 8 on 2 cores, with less CPU spent starting them.
# Some machine images set PYTHONDONTWRITEBYTECODE: then every worker rewrites and compiles
# every test module again (about 0.7 s of CPU each) instead of reading pytest's cache.
unset PYTHONDONTWRITEBYTECODE
# Plugins some machines carry that the suite does not use: hypothesis's costs about 1.2 s of
# CPU in every worker on a 2-core machine (pytest-benchmark's about 0.2 s). Blocking a plugin
# that is not installed does nothing, so the gate names them for every machine.
unused=(-p no:hypothesispytest -p no:benchmark)
python3 -m pytest "${unused[@]}" -n "${CHECK_WORKERS:-6}" --dist loadgroup "$@"
