"""Infra tests: infra/ on sys.path, a quiet jsii runtime with one package cache, and
stand-in wheels."""

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


def _jsii_package_cache() -> Path:
    """Where the jsii runtime keeps the libraries it unpacked, for this user (its default)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "com.amazonaws.jsii" / "package-cache"
    return Path.home() / ".cache" / "aws" / "jsii" / "package-cache"


# Named before a test gives a process another HOME (the AWS isolation does): a jsii process
# started then (a `cdk synth`) would unpack aws-cdk-lib's 180 MB again, ~8 s of CPU each.
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(_jsii_package_cache()))


@pytest.fixture(scope="session")
def dummy_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with a wheel's name: enough for an asset, and no build to wait for."""
    path = tmp_path_factory.mktemp("wheel") / "awscli_uploader-0.0.0-py3-none-any.whl"
    path.write_bytes(b"stand-in wheel for synth tests\n")
    return path


@pytest.fixture(scope="session")
def dummy_asset(tmp_path_factory: pytest.TempPathFactory, dummy_wheel: Path) -> Path:
    """A prebuilt asset directory of stand-in wheels, named as the pins say: synth tests
    use it as it is, with no build and no download."""
    from awscli_uploader_infra.wheel import pinned_requirements

    path = tmp_path_factory.mktemp("asset")
    (path / dummy_wheel.name).write_bytes(dummy_wheel.read_bytes())
    for name, version in pinned_requirements().items():
        (path / f"{name}-{version}-py3-none-any.whl").write_bytes(b"stand-in dependency\n")
    return path
