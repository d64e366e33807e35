"""The recorder: the one place where outcomes become counts, tallies and log lines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from awscli_uploader.model import (
    Candidate,
    Kind,
    Outcome,
    SkipKind,
    Skipped,
    of_batch,
    of_file,
    of_skip,
)
from awscli_uploader.scan.record import MAX_UNSTABLE_LINES, Recorder

LOG = logging.getLogger("awscli_uploader.test.record")


def _file(key: str = "k.txt", size: int = 5, bucket: str = "b-1") -> Candidate:
    return Candidate(Path(f"/r/{bucket}/{key}"), bucket, key, size, 0)


@pytest.mark.parametrize(
    ("outcome", "counts", "level", "message"),
    [
        (
            of_file(Kind.UPLOADED, _file(), size=7),
            {"uploaded": 1, "uploaded_bytes": 7},
            logging.INFO,
            "s3://b-1/k.txt: uploaded 7 bytes, verified, deleted",
        ),
        (
            of_file(Kind.PRESENT, _file()),
            {"present": 1},
            logging.INFO,
            "s3://b-1/k.txt: already in S3 with the same content; deleted local copy",
        ),
        (
            of_file(Kind.MISMATCH, _file(), "same size, different content"),
            {"failed": 1},
            logging.ERROR,
            "s3://b-1/k.txt: S3 does not match after upload (same size, different content); kept",
        ),
        (
            of_file(Kind.CHANGED, _file(), "it changed while read"),
            {"unstable": 1},
            logging.WARNING,
            "/r/b-1/k.txt: it changed while read; kept for the next scan",
        ),
        (
            of_batch(Kind.LIST_FAILED, "b-1", 3, "(access denied): x"),
            {"failed": 3},
            logging.ERROR,
            "s3://b-1: cannot list (access denied): x; 3 files stay local",
        ),
        (
            of_file(Kind.LATE, _file()),
            {},
            logging.WARNING,
            "s3://b-1/k.txt: no time to upload before the interruption; kept",
        ),
        (
            of_skip(
                Skipped(Path("/r/bad_dir"), SkipKind.INVALID, "invalid bucket name", "bad_dir")
            ),
            {"failed": 1},
            logging.ERROR,
            "/r/bad_dir: invalid bucket name",
        ),
        (
            of_skip(Skipped(Path("/r/x/.tmp"), SkipKind.EXCLUDED, "excluded by '.*'")),
            {"excluded": 1},
            logging.DEBUG,
            "/r/x/.tmp: excluded by '.*'",
        ),
    ],
)
def test_each_outcome_counts_and_logs_once(
    outcome: Outcome,
    counts: dict[str, int],
    level: int,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    record = Recorder(LOG)
    record([outcome])
    fields = ("uploaded", "uploaded_bytes", "present", "unstable", "ignored", "failed", "excluded")
    got = {name: getattr(record.stats, name) for name in fields if getattr(record.stats, name)}
    assert got == counts
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [(level, message)]


def test_bucket_tallies_follow_the_outcomes() -> None:
    record = Recorder(LOG)
    record(
        [
            of_file(Kind.UPLOADED, _file(bucket="b-1"), size=10),
            of_file(Kind.PRESENT, _file(bucket="b-2")),
            of_batch(Kind.BATCH_FAILED, "b-2", 4, "(error): boom"),
            of_file(Kind.REPLACING, _file(bucket="b-3"), "size differs"),
        ]
    )
    tallies = {
        bucket: (t.uploaded, t.uploaded_bytes, t.present, t.failed)
        for bucket, t in record.stats.buckets.items()
    }
    assert tallies == {"b-1": (1, 10, 0, 0), "b-2": (0, 0, 1, 4)}


def test_unstable_lines_are_capped_and_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    record = Recorder(LOG)
    extra = 7
    record(
        of_skip(Skipped(Path(f"/r/b-1/{n}"), SkipKind.UNSTABLE, "modified 0.1s ago; waiting"))
        for n in range(MAX_UNSTABLE_LINES + extra)
    )
    record.planned()
    assert record.stats.unstable == MAX_UNSTABLE_LINES + extra
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == MAX_UNSTABLE_LINES + 1
    assert messages[-1] == f"{extra} more files still being written; waiting"


def test_json_fields_name_the_file_or_the_bucket() -> None:
    assert of_file(Kind.UPLOADED, _file(), size=9).fields() == {
        "bucket": "b-1",
        "key": "k.txt",
        "bytes": 9,
    }
    assert of_batch(Kind.LIST_FAILED, "b-1", 2).fields() == {"bucket": "b-1"}
    assert Outcome(Kind.CLI_ERROR, reason="upload failed: x").fields() == {}


def test_summary_line_ends_the_scan(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    record = Recorder(LOG)
    record([of_file(Kind.UPLOADED, _file(), size=3)])
    stats = record.finished(1.25)
    assert stats.seconds == 1.25
    assert caplog.records[-1].getMessage().startswith("scan: uploaded 1 (3 bytes)")


@pytest.mark.parametrize(
    ("outcomes", "heartbeat", "level"),
    [
        ([], False, logging.DEBUG),  # an idle scan stays quiet
        ([of_skip(Skipped(Path("/r/b/x"), SkipKind.UNSTABLE, "waiting"))], False, logging.DEBUG),
        ([], True, logging.INFO),  # ... but for a heartbeat now and then
        ([of_file(Kind.PRESENT, _file())], False, logging.INFO),
        ([of_batch(Kind.LIST_FAILED, "b-1", 1)], False, logging.INFO),
    ],
)
def test_the_summary_is_info_only_when_the_scan_did_something(
    outcomes: list[Outcome], heartbeat: bool, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    record = Recorder(LOG)
    record(outcomes)
    record.finished(0.1, heartbeat=heartbeat)
    assert caplog.records[-1].levelno == level


def test_a_directory_of_waiting_files_counts_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    record = Recorder(LOG)
    waiting = Skipped(Path("/r/b-1/d"), SkipKind.UNSTABLE, "40 files still being written", files=40)
    record([of_skip(Skipped(Path("/r/b-1/x"), SkipKind.UNSTABLE, "modified 0.1s ago"))] * 21)
    record([of_skip(waiting)])
    record.planned()
    assert record.stats.unstable == 61
    assert caplog.records[-1].getMessage() == "41 more files still being written; waiting"
