"""`cdk -c` context values to SpotInstancesStack props."""

from __future__ import annotations

from typing import Any

import pytest
from awscli_uploader_infra.context import ContextError, stack_props


@pytest.mark.parametrize(
    ("context", "props"),
    [
        ({"bucketNames": "a-bucket"}, {"bucket_names": ("a-bucket",)}),
        ({"bucketNames": "a-bucket,b.bucket"}, {"bucket_names": ("a-bucket", "b.bucket")}),
        ({"bucketNames": ["a-bucket", "b-bucket"]}, {"bucket_names": ("a-bucket", "b-bucket")}),
        (
            {"bucketNames": "abc", "rootDir": "/data/s3", "interval": "30", "stability": "2.5"},
            {"bucket_names": ("abc",), "root_dir": "/data/s3", "interval": 30, "stability": 2.5},
        ),
        (
            {"bucketNames": "abc", "extraFlags": "--dry-run,--endpoint-url=http://h:9000"},
            {
                "bucket_names": ("abc",),
                "extra_flags": ("--dry-run", "--endpoint-url=http://h:9000"),
            },
        ),
        (
            {"bucketNames": "abc", "uploaderRegion": "us-east-1", "writerGroup": "sim"},
            {"bucket_names": ("abc",), "region": "us-east-1", "writer_group": "sim"},
        ),
        (
            {
                "bucketNames": "abc",
                "instanceTypes": "m7i.large,m6i.large",
                "maxPrice": 0.1,
                "rootDir": "",
                "dataVolumeGib": "500",
            },
            {
                "bucket_names": ("abc",),
                "instance_types": ("m7i.large", "m6i.large"),
                "max_price": 0.1,
                "data_volume_gib": 500,
            },
        ),
        (
            {
                "bucketNames": "abc",
                "imageId": "ami-0123456789abcdef0",
                "kmsKeyArns": "arn:aws:kms:eu-west-1:123456789012:key/k1",
                "sessionManager": "true",
            },
            {
                "bucket_names": ("abc",),
                "image_id": "ami-0123456789abcdef0",
                "kms_key_arns": ("arn:aws:kms:eu-west-1:123456789012:key/k1",),
                "session_manager": True,
            },
        ),
        (
            {"bucketNames": "abc", "sessionManager": False, "retainDataVolume": "true"},
            {"bucket_names": ("abc",), "session_manager": False, "retain_data_volume": True},
        ),
    ],
)
def test_context_becomes_props(context: dict[str, Any], props: dict[str, Any]) -> None:
    assert stack_props(context.get) == props


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "cdk synth -c bucketNames=BUCKET"),
        ({"bucketNames": " , "}, "cdk synth -c bucketNames=BUCKET"),
        (
            {"bucketNames": "abc", "interval": "soon"},
            "context interval must be a whole number, not 'soon'",
        ),
        ({"bucketNames": {"a": 1}}, "must be a list or a comma-separated string"),
        ({"bucketNames": "abc", "sessionManager": "yes"}, "sessionManager must be true or false"),
        ({"bucketNames": "abc", "interruption": "stop"}, "context interruption is gone"),
        ({"bucketNames": "abc", "instanceType": "c6i.large"}, "use instanceTypes"),
    ],
)
def test_bad_context_is_reported(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError, match=message):
        stack_props(context.get)
