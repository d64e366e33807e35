"""The part layouts `aws s3 cp` makes, at every boundary, for the chunk sizes users set.

Each row: (threshold, chunksize, file size, parts or None for one PUT, part size).
Worked out by hand from s3transfer (size >= threshold is multipart; the chunk is
doubled while it needs more than 10,000 parts, then held within 5 MiB..5 GiB);
the real CLIs agree on a sample (test_s3settings.py).
"""

from __future__ import annotations

from awscli_uploader.s3.settings import MultipartSettings

MIB = 1024 * 1024
GIB = 1024 * MIB
T8 = 8 * MIB  # the CLI's default threshold
T5 = 5 * MIB
C5, C7, C16, C64, C100, C10M = 5 * MIB, 7 * MIB, 16 * MIB, 64 * MIB, 100 * MIB, 10_000_000

LAYOUTS: list[tuple[int, int, int, int | None, int]] = [
    # 5MB chunks: below the threshold one PUT, at it two parts (5 + 3 MiB)
    (T8, C5, T8 - 1, None, T8 - 1),
    (T8, C5, T8, 2, C5),
    (T8, C5, 2 * C5, 2, C5),
    (T8, C5, 2 * C5 + 1, 3, C5),
    (T8, C5, 10_000 * C5, 10_000, C5),
    (T8, C5, 10_000 * C5 + 1, 5_001, 2 * C5),
    (T5, C5, T5 - 1, None, T5 - 1),
    (T5, C5, T5, 1, C5),
    (T5, C5, T5 + 1, 2, C5),
    # 7MB
    (T8, C7, T8 - 1, None, T8 - 1),
    (T8, C7, T8, 2, C7),
    (T8, C7, 2 * C7, 2, C7),
    (T8, C7, 2 * C7 + 1, 3, C7),
    (T5, C7, T5, 1, C7),
    (T5, C7, C7, 1, C7),
    (T5, C7, C7 + 1, 2, C7),
    (T8, C7, 10_000 * C7, 10_000, C7),
    (T8, C7, 10_000 * C7 + 1, 5_001, 2 * C7),
    # 16MB: every file of 8-16 MiB is one part
    (T8, C16, T8 - 1, None, T8 - 1),
    (T8, C16, T8, 1, C16),
    (T8, C16, 12 * MIB + 7, 1, C16),
    (T8, C16, C16, 1, C16),
    (T8, C16, C16 + 1, 2, C16),
    (T8, C16, 2 * C16, 2, C16),
    (T8, C16, 2 * C16 + 1, 3, C16),
    (T8, C16, 10_000 * C16, 10_000, C16),
    (T8, C16, 10_000 * C16 + 1, 5_001, 2 * C16),
    # 64MB: the 23 MiB file under a 5MB threshold is one part
    (T5, C64, T5 - 1, None, T5 - 1),
    (T5, C64, T5, 1, C64),
    (T5, C64, 23 * MIB + 5, 1, C64),
    (T8, C64, T8, 1, C64),
    (T8, C64, C64, 1, C64),
    (T8, C64, C64 + 1, 2, C64),
    (T8, C64, 112 * MIB, 2, C64),
    (T8, C64, 2 * C64 + 1, 3, C64),
    (T8, C64, 10_000 * C64, 10_000, C64),
    (T8, C64, 10_000 * C64 + 1, 5_001, 2 * C64),
    # 100MB
    (T8, C100, T8 - 1, None, T8 - 1),
    (T8, C100, T8, 1, C100),
    (T8, C100, C100, 1, C100),
    (T8, C100, C100 + 1, 2, C100),
    (T8, C100, 184 * MIB, 2, C100),
    (T8, C100, 2 * C100 + 1, 3, C100),
    (T8, C100, 10_000 * C100, 10_000, C100),
    (T8, C100, 10_000 * C100 + 1, 5_001, 2 * C100),
    # 10000000 (bytes, not MiB)
    (T8, C10M, T8 - 1, None, T8 - 1),
    (T8, C10M, T8, 1, C10M),
    (T8, C10M, C10M, 1, C10M),
    (T8, C10M, C10M + 1, 2, C10M),
    (T8, C10M, 20 * MIB, 3, C10M),
    (T8, C10M, 2 * C10M + 1, 3, C10M),
    (T8, C10M, 10_000 * C10M, 10_000, C10M),
    (T8, C10M, 10_000 * C10M + 1, 5_001, 2 * C10M),
    # below 5 MiB: doubled for 10,000 parts first, then raised to 5 MiB
    (MIB, MIB, MIB, 1, C5),
    (MIB, MIB, 6 * MIB, 2, C5),
    (MIB, MIB, 50 * GIB, 6_400, 8 * MIB),
    # above 5 GiB: lowered
    (T8, 6 * GIB, 6 * GIB, 2, 5 * GIB),
    # a threshold above the chunk size
    (100 * MIB, 8 * MIB, 100 * MIB - 1, None, 100 * MIB - 1),
    (100 * MIB, 8 * MIB, 100 * MIB, 13, 8 * MIB),
]


def settings(threshold: int, chunksize: int) -> MultipartSettings:
    return MultipartSettings(threshold=threshold, chunksize=chunksize)


def layout_id(row: tuple[int, int, int, int | None, int]) -> str:
    threshold, chunksize, size, _, _ = row
    return f"t{threshold}-c{chunksize}-s{size}"
