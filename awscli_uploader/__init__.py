"""Move finished files from a local tree into S3 through the AWS CLI."""

from __future__ import annotations

__version__ = "0.1.0"
