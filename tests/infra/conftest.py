"""Infra tests: infra/ on sys.path, a quiet jsii runtime, and a stand-in wheel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

# The jsii runtime prints a banner per process on Node versions it calls old.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")


@pytest.fixture(scope="session")
def dummy_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with a wheel's name: enough for an asset, and no build to wait for."""
    path = tmp_path_factory.mktemp("wheel") / "awscli_uploader-0.0.0-py3-none-any.whl"
    path.write_bytes(b"stand-in wheel for synth tests\n")
    return path
