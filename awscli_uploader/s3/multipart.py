"""No incomplete multipart upload outlives a run: after an upload call that ended early or
failed, and at start for the calls a killed run left in its journal, the multipart uploads
this daemon started are aborted (S3 bills their parts until then).

Ours are told apart by key and time: an upload of one of the call's keys, initiated by S3
after the call started (less CLOCK_SLACK for S3's clock against ours). Another writer's
upload of the same key in the same minutes would be aborted too; the uploader owns its keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from ..errors import AwsCliError
from .awscli import AwsCli, ErrorKind, Upload, classify
from .listing import listing_prefixes

CLOCK_SLACK = 300.0  # seconds S3's clock may be behind ours


_FRACTION = re.compile(r"\.(\d+)")


def initiated_at(upload: Upload) -> float | None:
    """The upload's initiation as a Unix time; None when the CLI printed something else.
    (Python 3.9's fromisoformat takes only 3 or 6 digits of a second's fraction.)"""
    text = upload.initiated.replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def ours(
    uploads: Sequence[Upload], keys: Sequence[str], since: float, until: float | None = None
) -> list[Upload]:
    """The uploads of `keys` initiated between `since` and `until` (Unix times; None: up to
    now), widened by the clock slack."""
    wanted = set(keys)
    found: list[Upload] = []
    for upload in uploads:
        when = initiated_at(upload)
        if upload.key not in wanted or when is None or when < since - CLOCK_SLACK:
            continue
        if until is None or when <= until + CLOCK_SLACK:
            found.append(upload)
    return found


class Cleanup(NamedTuple):
    aborted: list[Upload]
    problem: str | None  # why the uploads could not be listed or aborted (None: done)
    unsupported: bool = False  # the store has no such listing (s3rver: NotImplemented)
    denied: bool = False  # the credentials may not: trying again won't help

    @property
    def final(self) -> bool:
        """Whether nothing is left to try later."""
        return self.problem is None or self.unsupported or self.denied


def abort_ours(
    cli: AwsCli, bucket: str, keys: Sequence[str], since: float, until: float | None = None
) -> Cleanup:
    """Abort the multipart uploads of `keys` initiated between `since` and `until`. Never
    raises: what went wrong is in the result."""
    if not keys:
        return Cleanup([], None)
    aborted: list[Upload] = []
    try:
        for prefix in listing_prefixes(keys):
            for upload in ours(cli.list_multipart_uploads(bucket, prefix), keys, since, until):
                cli.abort_multipart_upload(bucket, upload)
                aborted.append(upload)
    except AwsCliError as exc:
        if classify(exc.stderr) is ErrorKind.ACCESS_DENIED:
            why = (
                f"{exc.summary()} (the credentials need s3:ListBucketMultipartUploads and "
                "s3:AbortMultipartUpload; the uploads stay until then)"
            )
            return Cleanup(aborted, why, denied=True)
        return Cleanup(aborted, exc.summary(), unsupported="NotImplemented" in exc.stderr)
    except (ValueError, TypeError) as exc:  # an answer the CLI printed otherwise
        return Cleanup(aborted, f"unexpected listing: {exc}")
    return Cleanup(aborted, None)
