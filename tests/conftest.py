"""Shared fixtures: an isolated AWS environment, one moto server, both AWS CLIs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy, fault_proxy
from helpers import (
    IN_CI,
    TOOLS_PYTHON,
    Moto,
    S3rver,
    cli_path,
    free_port,
    isolate_aws,
    required_cli,
    wait_http,
)

from awscli_uploader.local import lease


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=8.0,
        help="how long the soak test's writer runs (default 8; try 600)",
    )


# Tests that start AWS CLI processes take seconds each; the rest take milliseconds.
_SERVERS = {"moto", "moto_server", "s3rver", "aws_cli", "one_cli"}


def _cost_rank(item: pytest.Item) -> int:
    if item.get_closest_marker("slow"):
        return 0
    return 1 if _SERVERS.intersection(getattr(item, "fixturenames", ())) else 2


# The module-scoped fixtures (a synth, a bootstrap run, 24 MiB of noise, a benchmark run) and
# their module: under xdist (--dist loadgroup) their users run on one worker, so that each is
# built once, not once per worker. pytest offers no public way to read a fixture's scope at
# collection, so they are named here; pytest_fixture_setup below fails a module-scoped fixture
# that is neither named here nor in a module that has an xdist_group of its own.
SHARED_FIXTURES = {
    ("tests/test_proof.py", "noise"),
    ("tests/test_bench.py", "ran"),
    ("tests/infra/test_infra_bootstrap.py", "run"),
    ("tests/infra/test_infra_typescript.py", "template"),
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The users of a shared module-scoped fixture go to one worker (a test already in a
    group, as the jsii modules are, keeps it). The slow tests go out first, then those that
    use a server, so that the last ones the workers get are short and all of them finish
    together, not one worker running a slow test alone. A test that uses a server or a real
    AWS CLI is marked `servers`."""
    items.sort(key=_cost_rank)
    for item in items:
        if _SERVERS.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
        if item.get_closest_marker("xdist_group"):
            continue
        module = item.nodeid.split("::")[0]
        if any((module, name) in SHARED_FIXTURES for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """A module-scoped fixture nobody grouped would be built once per worker: say where to
    name it."""
    if fixturedef.scope != "module" or request.node.get_closest_marker("xdist_group"):
        return
    module = request.node.nodeid.split("::")[0]
    if (module, fixturedef.argname) not in SHARED_FIXTURES:
        raise pytest.UsageError(
            f"{module}: module-scoped fixture {fixturedef.argname!r} is in no xdist group: "
            "add it to SHARED_FIXTURES in tests/conftest.py (or mark its module)"
        )


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test in an AWS environment of its own (helpers.isolate_aws)."""
    isolate_aws(monkeypatch, tmp_path_factory)


@pytest.fixture(autouse=True, scope="session")
def _lease_breaks_do_not_kill_pytest() -> None:
    """In-process scans hold read leases; a writer breaking one sends SIGIO (lease.py)."""
    lease.ignore_break_signal()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    port = free_port()
    log = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [TOOLS_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", deadline=30)
        yield Moto(url)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def moto(moto_server: Moto) -> Moto:
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def s3rver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    """npm s3rver on a free loopback port: a second S3, so that moto's quirks hide nothing."""
    executable = shutil.which("s3rver")
    if executable is None:
        message = "s3rver is not installed (npm install -g s3rver@3)"
        if IN_CI:
            pytest.fail(message + " (CI must run it)")
        pytest.skip(message)
    port = free_port()
    data = tmp_path_factory.mktemp("s3rver")
    log = open(data.parent / "s3rver.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [executable, "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/", deadline=30)
        yield S3rver(url)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def s3rver(s3rver_server: S3rver, monkeypatch: pytest.MonkeyPatch) -> S3rver:
    """An empty s3rver, and the keys it knows in the environment."""
    s3rver_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3rver_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3rver_server.key)
    return s3rver_server


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy between the AWS CLI and moto; the aws processes these tests start
    (daemons too) retry once, as the CLI's own retry logic is not under test."""
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    with fault_proxy(moto.url) as running:
        yield running


@pytest.fixture(params=["v1", pytest.param("v2", marks=pytest.mark.slow)])
def aws_cli(request: pytest.FixtureRequest) -> str:
    """Tests of the CLI's own behaviour run with AWS CLI v1 (PyPI) and v2 (Debian); the
    quick loop (-m "not slow") runs them with v1 alone, the full suite with both."""
    return required_cli(request.param)


@pytest.fixture
def one_cli() -> str:
    """One AWS CLI (v1, else v2) for tests of this program's own logic, where which CLI
    runs underneath is not what is tested; the CLI's own behaviour is tested with `aws_cli`."""
    path = cli_path("v1") or cli_path("v2")
    if path is None:
        pytest.fail("no AWS CLI installed")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "s3"
    path.mkdir()
    return path
