"""The cdk app's entry point on bad settings, in this process (the jsii worker's runtime):
one line on stderr, exit code 2, no traceback, nothing synthesized."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_helpers import require_aws_cdk, run_main

require_aws_cdk()

pytestmark = pytest.mark.xdist_group("jsii")


def test_app_without_a_pinned_image_says_how_to_pin_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main({"bucketNames": "sim-results"}, tmp_path) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: awscli-uploader: the image must be pinned: give image_id (-c imageId=ami-...) "
        "or an account and region, so that the latest Amazon Linux 2023 is looked up once "
        "and kept in cdk.context.json\n"
    )
    assert not list((tmp_path / "cdk.out").glob("*.template.json"))


def test_app_reports_bad_context_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = {"bucketNames": "Not_A_Bucket", "imageId": "ami-0123456789abcdef0"}
    assert run_main(context, tmp_path) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: awscli-uploader: bucket name 'Not_A_Bucket' is invalid")
