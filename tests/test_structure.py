"""The package's shape: the tree shows the flow, `status` loads no daemon.

The layers themselves (no module imports a later phase, no cycle, only the seam
runs the AWS CLI) are import-linter's contracts in pyproject.toml, which
scripts/check.sh runs as `lint-imports`.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

PACKAGE = REPO / "awscli_uploader"


def test_the_top_level_holds_at_most_a_dozen_modules_and_the_subpackages() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert len(modules) <= 12, modules
    assert packages == ["ec2", "local", "ops", "s3", "scan"]


def test_status_loads_neither_the_daemon_nor_the_aws_cli_seam() -> None:
    code = (
        "import sys, awscli_uploader.cli, awscli_uploader.ops.status; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('awscli_uploader', 'sh')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(out.stdout.split())
    assert "awscli_uploader.ops.status" in loaded
    for heavy in (
        "awscli_uploader.daemon",
        "awscli_uploader.scan.uploader",
        "awscli_uploader.s3.awscli",
        "sh",
    ):
        assert heavy not in loaded
