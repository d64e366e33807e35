"""No incomplete multipart upload outlives a run: after an upload call that ended early or
failed, and at start for the calls a killed run left in its journal, the multipart uploads
this daemon started are aborted (S3 bills their parts until then).

Ours are told apart by key and time: an upload of one of the call's keys, initiated by S3
after the call started (less CLOCK_SLACK for S3's clock against ours). Another writer's
upload of the same key in the same minutes would be aborted too; the uploader owns its keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from ..errors import AwsCliError
from .awscli import AwsCli, ErrorKind, Upload, classify
from .listing import listing_prefixes

CLOCK_SLACK = 300.0  # seconds S3's clock may be behind ours


def initiated_at(upload: Upload) -> float | None:
    """The upload's initiation as a Unix time; None when the CLI printed something else."""
    try:
        when = datetime.fromisoformat(upload.initiated.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def ours(uploads: Sequence[Upload], keys: Sequence[str], since: float) -> list[Upload]:
    """The uploads of `keys` initiated after `since` (a Unix time), less the clock slack."""
    wanted = set(keys)
    found: list[Upload] = []
    for upload in uploads:
        when = initiated_at(upload)
        if upload.key in wanted and when is not None and when >= since - CLOCK_SLACK:
            found.append(upload)
    return found


class Cleanup(NamedTuple):
    aborted: list[Upload]
    problem: str | None  # why the uploads could not be listed or aborted (None: done)
    unsupported: bool = False  # the store has no such listing (s3rver: NotImplemented)


def abort_ours(cli: AwsCli, bucket: str, keys: Sequence[str], since: float) -> Cleanup:
    """Abort the multipart uploads of `keys` initiated since `since`. Never raises."""
    if not keys:
        return Cleanup([], None)
    aborted: list[Upload] = []
    try:
        for prefix in listing_prefixes(keys):
            for upload in ours(cli.list_multipart_uploads(bucket, prefix), keys, since):
                cli.abort_multipart_upload(bucket, upload)
                aborted.append(upload)
    except AwsCliError as exc:
        unsupported = "NotImplemented" in exc.stderr
        if classify(exc.stderr) is ErrorKind.ACCESS_DENIED:
            why = f"{exc.summary()} (the role needs s3:ListBucketMultipartUploads)"
        else:
            why = exc.summary()
        return Cleanup(aborted, why, unsupported)
    return Cleanup(aborted, None)
