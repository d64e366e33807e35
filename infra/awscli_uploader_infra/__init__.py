"""AWS CDK pieces that run awscli-uploader on EC2: a reusable construct and an example stack.

The CDK classes are imported lazily, so `awscli_uploader_infra.render` works
without aws-cdk-lib installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AwscliUploader", "SpotInstancesStack"]


def __getattr__(name: str) -> Any:
    if name == "AwscliUploader":
        from .uploader_construct import AwscliUploader

        return AwscliUploader
    if name == "SpotInstancesStack":
        from .spot_stack import SpotInstancesStack

        return SpotInstancesStack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
