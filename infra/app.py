#!/usr/bin/env python3
"""`cdk deploy` entry point: the example SpotInstancesStack, configured by context.

cdk deploy -c bucketNames=my-results -c rootDir=/data/output/s3
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from awscli_uploader_infra.context import ContextError, stack_props
from awscli_uploader_infra.render import InvalidSettingsError
from awscli_uploader_infra.spot_stack import SpotInstancesStack
from awscli_uploader_infra.wheel import WheelBuildError


def main(app: cdk.App | None = None) -> int:
    """Synthesize into `app` (cdk's own, from the environment cdk sets, when not given);
    an error in the settings is one line on stderr and exit code 2."""
    app = app or cdk.App()
    try:
        props = stack_props(app.node.try_get_context)
        SpotInstancesStack(
            app,
            str(app.node.try_get_context("stackName") or "AwscliUploaderSpot"),
            env=cdk.Environment(
                account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                region=os.environ.get("CDK_DEFAULT_REGION"),
            ),
            **props,
        )
    except (ContextError, InvalidSettingsError, WheelBuildError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
