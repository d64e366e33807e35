"""Turns `cdk -c key=value` context into SpotInstancesStack props."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONTEXT_KEYS = {
    "bucketNames": "bucket_names",
    "rootDir": "root_dir",
    "interval": "interval",
    "stability": "stability",
    "uploaderRegion": "region",
    "extraFlags": "extra_flags",
    "writerGroup": "writer_group",
    "instanceTypes": "instance_types",
    "maxPrice": "max_price",
    "wheelPath": "wheel_path",
    "imageId": "image_id",
    "dataVolumeGib": "data_volume_gib",
    "retainDataVolume": "retain_data_volume",
    "kmsKeyArns": "kms_key_arns",
    "sessionManager": "session_manager",
    "cloudwatch": "cloudwatch",
}


class ContextError(ValueError):
    """A context value that can't become a prop."""


def _words(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ContextError(f"context {key} must be a list or a comma-separated string, not {value!r}")


def _number(key: str, value: Any, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except (TypeError, ValueError) as error:
        what = "a whole number" if kind is int else "a number"
        raise ContextError(f"context {key} must be {what}, not {value!r}") from error


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ContextError(f"context {key} must be true or false, not {value!r}")


REMOVED_KEYS = {
    "instanceType": "use instanceTypes (several types of one size, comma-separated)",
    "interruption": "spot instances are the Auto Scaling group's now: no stop, no request",
}


def stack_props(get: Callable[[str], Any]) -> dict[str, Any]:
    """Props for SpotInstancesStack from context values; absent keys keep the defaults.

    `get` is `app.node.try_get_context`. Values from `-c` arrive as strings,
    values from cdk.json may be JSON lists and numbers.
    """
    props: dict[str, Any] = {}
    for key, hint in REMOVED_KEYS.items():
        if get(key) not in (None, ""):
            raise ContextError(f"context {key} is gone: {hint}")
    for key, prop in CONTEXT_KEYS.items():
        value = get(key)
        if value is None or value == "":
            continue
        if prop in ("bucket_names", "extra_flags", "kms_key_arns", "instance_types"):
            props[prop] = _words(key, value)
        elif prop in ("interval", "data_volume_gib"):
            props[prop] = _number(key, value, int)
        elif prop in ("stability", "max_price"):
            props[prop] = _number(key, value, float)
        elif prop in ("session_manager", "cloudwatch", "retain_data_volume"):
            props[prop] = _flag(key, value)
        else:
            props[prop] = str(value)
    if not props.get("bucket_names"):
        raise ContextError("set the buckets to upload to: cdk synth -c bucketNames=BUCKET[,BUCKET]")
    return props
