"""The verify phase: after an upload, does S3 hold each file's bytes?

A file is proven (and handed to settle), kept with a reason, or unprovable
from a listing (an opaque ETag, or a part layout the CLI would not make here):
those go once through the per-file upload that stores a SHA-256 with the object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .check import Target, prove_file
from .outcome import Kind, Outcome, of_file
from .proof import Fingerprint, Proof, RemoteObject, Verdict
from .scanner import Candidate
from .settle import Action, Proven, decide

NEEDS_SHA256 = frozenset({Verdict.UNPROVABLE, Verdict.UNKNOWN_LAYOUT})


class Verified(NamedTuple):
    proven: list[Proven]
    unprovable: list[tuple[Candidate, Path]]
    outcomes: list[Outcome]


def judge_upload(item: Candidate, checked: Proof) -> Proven | Outcome:
    """After an upload: proven, or kept because S3 does not match."""
    if decide(checked.verdict, uploaded=True) is Action.DELETE and checked.identity is not None:
        return Proven(item, checked.identity, uploaded=True)
    return of_file(Kind.MISMATCH, item, checked.reason)


def verify(
    target: Target,
    uploaded: Sequence[tuple[Candidate, Path]],
    remote: Mapping[str, RemoteObject],
    known: Mapping[Path, Fingerprint],
) -> Verified:
    """Check an uploaded batch against a fresh listing of its keys."""
    result = Verified([], [], [])
    for item, path in uploaded:
        obj = remote.get(item.key)
        if obj is None:
            result.outcomes.append(of_file(Kind.MISSING, item))
            continue
        checked, notes = prove_file(target, item, path, obj, known.get(path))
        result.outcomes.extend(notes)
        if any(o.kind is Kind.OPAQUE for o in notes):
            target = target._replace(opaque=True)
        if checked is None:
            continue
        if checked.verdict in NEEDS_SHA256:
            result.unprovable.append((item, path))
            continue
        judged = judge_upload(item, checked)
        if isinstance(judged, Proven):
            result.proven.append(judged)
        else:
            result.outcomes.append(judged)
    return result
