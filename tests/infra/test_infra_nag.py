"""The cdk-nag AwsSolutions pack finds nothing unexplained in the example stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_helpers import require_aws_cdk

# aws_cdk and cdk_nag (jsii: a node process, seconds of CPU) are imported by the tests that
# use them, not by every xdist worker when it collects
require_aws_cdk()

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

require_aws_cdk("cdk_nag")


def _findings(dummy_asset: Path, **props: object) -> list[str]:
    import cdk_nag
    from aws_cdk import App, Aspects
    from aws_cdk.assertions import Annotations, Match
    from awscli_uploader_infra import SpotInstancesStack

    app = App()
    stack = SpotInstancesStack(
        app,
        "Nag",
        bucket_names=["sim-results", "sim.logs-2"],
        wheel_path=str(dummy_asset),
        image_id="ami-0123456789abcdef0",
        **props,  # type: ignore[arg-type]
    )
    Aspects.of(app).add(cdk_nag.AwsSolutionsChecks())
    app.synth()
    annotations = Annotations.from_stack(stack)
    found = [
        *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-")),
        *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-")),
    ]
    return [f"{m.id}: {m.entry.data}" for m in found]


@pytest.mark.parametrize(
    "props",
    [
        {},
        {
            "session_manager": True,
            "kms_key_arns": ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"],
        },
    ],
)
def test_aws_solutions_pack_finds_nothing_unexplained(
    dummy_asset: Path, props: dict[str, object]
) -> None:
    assert _findings(dummy_asset, **props) == []


def test_every_suppression_has_a_one_line_reason() -> None:
    from awscli_uploader_infra import nag

    for rule, (reason, _) in nag.REASONS.items():
        assert rule.startswith("AwsSolutions-")
        assert "\n" not in reason and 20 <= len(reason) <= 200, rule
