"""The transfer layer: more requests in flight for many small files, the profile kept whole
and its own `s3.max_concurrent_requests` winning, the copy of credentials only ever in a
private runtime directory off the root; the real CLIs through a proxy that counts the PUTs
in flight."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import Moto, assert_drained, put_files, run_once

from awscli_uploader.local.state import StateDir
from awscli_uploader.s3.layer import concurrency_for, faithful, layer_env, layered_text
from awscli_uploader.s3.layer_dir import NotPrivate, clean, opened, private_dir
from awscli_uploader.s3.settings import parse_file

COUNT = 40
CLI_DEFAULT = 10  # the CLI's own max_concurrent_requests: PUTs it keeps in flight


@pytest.mark.parametrize(
    ("small_files", "wanted", "asked"),
    [
        (1, 64, None),  # one file: the CLI's default
        (10, 64, None),  # no more files than the default keeps in flight
        (11, 64, 11),  # never more than there are files
        (300, 64, 64),
        (300, 128, 128),
        (300, 10, None),
        (1, 4, 4),  # fewer than the CLI's default: the operator's cap, for every call
    ],
)
def test_concurrency_for(small_files: int, wanted: int, asked: int | None) -> None:
    assert concurrency_for(small_files, wanted) == asked


def _files(home: Path, config: str, credentials: str = "") -> dict[str, str]:
    (home / "config").write_text(config)
    (home / "credentials").write_text(credentials)
    return {
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }


def _layer(
    env: dict[str, str], profile: str | None, tmp_path: Path
) -> dict[str, dict[str, object]] | None:
    text = layered_text(env, profile, 64)
    if text is None:
        return None
    (tmp_path / "layer").write_text(text)
    return parse_file(tmp_path / "layer")


def test_the_layer_is_the_credentials_file_with_the_profiles_s3_and_the_concurrency(
    tmp_path: Path,
) -> None:
    env = _files(
        tmp_path,
        "[profile work]\nregion = eu-central-1\nrole_arn = arn:aws:iam::1:role/r\n"
        "source_profile = base\ns3 =\n  multipart_chunksize = 16MB\n"
        "[profile base]\nregion = us-east-1\n[sso-session corp]\nsso_region = eu-west-1\n",
        "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = secret%with=signs\n"
        "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s\n",
    )
    assert _layer(env, "work", tmp_path) == {
        "base": {"aws_access_key_id": "AKIDBASE", "aws_secret_access_key": "secret%with=signs"},
        "other": {"aws_access_key_id": "AKIDOTHER", "aws_secret_access_key": "s"},
        "work": {"s3": {"multipart_chunksize": "16MB", "max_concurrent_requests": "64"}},
    }


def test_an_s3_in_the_credentials_file_is_the_one_the_cli_uses(tmp_path: Path) -> None:
    env = _files(
        tmp_path,
        "[default]\ns3 =\n  multipart_threshold = 64MB\n",
        "[default]\naws_access_key_id = A\ns3 =\n  addressing_style = path\n",
    )
    assert _layer(env, None, tmp_path) == {
        "default": {
            "aws_access_key_id": "A",
            "s3": {"addressing_style": "path", "max_concurrent_requests": "64"},
        }
    }


@pytest.mark.parametrize(
    ("config", "credentials", "profile"),
    [
        ("[default]\ns3 =\n  max_concurrent_requests = 3\n", "", None),
        ("", "[default]\ns3 =\n  max_concurrent_requests = 3\n", None),
        ("[profile work]\ns3 =\n  max_concurrent_requests = 20\n", "", "work"),
        ("[profile work]\nregion = eu-west-1\n", "", "missing"),  # the CLI says so itself
    ],
)
def test_no_layer_when_the_profile_sets_its_own_or_does_not_exist(
    config: str, credentials: str, profile: str | None, tmp_path: Path
) -> None:
    assert layered_text(_files(tmp_path, config, credentials), profile, 64) is None


def test_with_no_files_the_default_profile_gets_only_the_concurrency(tmp_path: Path) -> None:
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none-either"),
    }
    assert _layer(env, None, tmp_path) == {"default": {"s3": {"max_concurrent_requests": "64"}}}


def test_the_layer_is_private_and_gone_after_the_call(tmp_path: Path) -> None:
    env = _files(tmp_path, "", "[default]\naws_access_key_id = A\n")
    layers = tmp_path / "run" / "awscli-uploader"
    layers.parent.mkdir(mode=0o700)
    with layer_env(layers, env, None, 64) as extra:
        path = Path(extra["AWS_SHARED_CREDENTIALS_FILE"])
        assert path.parent == layers
        assert (path.stat().st_mode & 0o777, layers.stat().st_mode & 0o777) == (0o600, 0o700)
    assert list(layers.iterdir()) == []
    with layer_env(layers, env, None, None) as extra:
        assert extra == {}


def test_a_layer_that_cannot_be_read_back_is_not_used(tmp_path: Path) -> None:
    """faithful() fails closed on what layered_text() fails closed on (here an OSError:
    a credentials file name too long for the filesystem)."""
    env = {"AWS_CONFIG_FILE": str(tmp_path / "config")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / ("x" * 300))
    (tmp_path / "layer").write_text("[default]\n")
    assert not faithful(tmp_path / "layer", env, None, 64)


@pytest.mark.parametrize(
    ("environ", "where"),
    [
        ({"XDG_RUNTIME_DIR": "/run/user/1000"}, "/run/user/1000/awscli-uploader"),
        ({}, "/tmp/awscli-uploader-1000"),
        ({"XDG_RUNTIME_DIR": ""}, "/tmp/awscli-uploader-1000"),
        ({"XDG_RUNTIME_DIR": "run/user/1000"}, "/tmp/awscli-uploader-1000"),  # XDG: ignored
    ],
)
def test_the_private_directory(environ: dict[str, str], where: str) -> None:
    assert private_dir(environ, tmp="/tmp", uid=1000) == Path(where)


def _other_uid() -> int:
    for name in ("awsup-bench-writer", "nobody"):
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    return 65534


def _not_ours_alone(where: Path, case: str) -> None:
    """Put at `where` what another user could have put there first."""
    if case == "symlink":  # to a directory of ours that would pass every other check
        (where.parent / "elsewhere").mkdir(mode=0o700)
        where.symlink_to(where.parent / "elsewhere")
    elif case == "file":
        where.write_text("")
    else:
        where.mkdir(mode=0o700)
        if case == "other-owner":
            if os.geteuid() != 0:
                pytest.skip("giving a directory to another user needs root")
            os.chown(where, _other_uid(), -1)
        else:
            os.chmod(where, 0o755)


NOT_OURS_ALONE = ["other-owner", "mode-0755", "symlink", "file"]


@pytest.mark.parametrize("case", NOT_OURS_ALONE)
def test_a_directory_not_ours_alone_is_refused(case: str, tmp_path: Path) -> None:
    where = tmp_path / "run" / "awscli-uploader"
    where.parent.mkdir(mode=0o700)
    _not_ours_alone(where, case)
    with pytest.raises(NotPrivate), opened(where):
        pass
    with pytest.raises(NotPrivate):
        clean(where)
    env = _files(tmp_path, "", "[default]\naws_access_key_id = A\n")
    with layer_env(where, env, None, 64) as extra:
        assert extra == {}
    assert [p.name for p in tmp_path.rglob("*.credentials")] == []


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_parent_others_may_write_unsticky_is_refused(mode: int, tmp_path: Path) -> None:
    """In it another user could rename our directory away and put theirs in its place."""
    (tmp_path / "run").mkdir()
    os.chmod(tmp_path / "run", mode)
    with pytest.raises(NotPrivate), opened(tmp_path / "run" / "awscli-uploader"):
        pass
    os.chmod(tmp_path / "run", mode | 0o1000)  # sticky, as /tmp
    with opened(tmp_path / "run" / "awscli-uploader"):
        pass


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_at_start_the_leftovers_of_dead_processes_go_and_a_live_ones_stay(
    tmp_path: Path,
) -> None:
    where = tmp_path / "awscli-uploader"
    where.mkdir(mode=0o700)
    dead, alive, mine = _dead_pid(), os.getppid(), os.getpid()
    names = [f"{dead}-0.credentials", f"{alive}-3.credentials", f"{mine}-0.credentials"]
    for name in [*names, "notes.txt"]:
        (where / name).write_text("[default]\naws_secret_access_key = S\n")
    # this process's own pid: one before it of the same pid left it
    assert sorted(clean(where)) == sorted([names[0], names[2]])
    assert sorted(p.name for p in where.iterdir()) == sorted([names[1], "notes.txt"])


Gauge = Callable[[], int]


def _gauge(proxy: FaultProxy) -> Gauge:
    """Every PUT waits 0.6 s at the proxy (long enough that a busy host's CLI has the
    next ones out before the first come back); the most PUTs seen in flight at once."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def hook(method: str, path: str) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.6)
        with lock:
            state["now"] -= 1

    proxy.add("hook", method="PUT", hook=hook)
    return lambda: state["peak"]


def _drain(
    root: Path, moto: Moto, proxy: FaultProxy, cli: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], int]:
    """One `--once` drain of the small files through the proxy: its run (drained, exit 0)
    and the most PUTs the proxy saw in flight at once."""
    peak = _gauge(proxy)
    files = _small_files(root, moto)
    ran = run_once(root, proxy.url, cli, *args)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_drained(root, moto, files)
    return ran, peak()


def _small_files(root: Path, moto: Moto) -> dict[tuple[str, str], bytes]:
    moto.create_bucket("layer-bucket")
    return put_files(
        root, {("layer-bucket", f"run/{i:02d}.bin"): os.urandom(1000) for i in range(COUNT)}
    )


def test_many_small_files_go_with_more_requests_in_flight(
    aws_cli: str, root: Path, moto: Moto, proxy: FaultProxy
) -> None:
    _, peak = _drain(root, moto, proxy, aws_cli)
    assert peak > CLI_DEFAULT
    assert list(_layers().iterdir()) == []


def _layers() -> Path:
    return Path(os.environ["XDG_RUNTIME_DIR"]) / "awscli-uploader"


@pytest.mark.slow
def test_the_layer_is_never_on_the_root_and_a_killed_runs_go_at_start(
    one_cli: str, root: Path, moto: Moto
) -> None:
    """Leftovers of processes now gone (a copy of credentials each) are removed by the
    next start, a live daemon's (on another root) are not; an older version's, on the
    root, are removed too."""
    _layers().mkdir(mode=0o700)
    dead, alive = (
        _layers() / f"{_dead_pid()}-0.credentials",
        _layers() / f"{os.getppid()}-0.credentials",
    )
    old = StateDir(root).path / "aws" / "1-0.credentials"
    old.parent.mkdir(parents=True)
    for path in (dead, alive, old):
        path.write_text("[default]\naws_secret_access_key = S\n")
    files = _small_files(root, moto)
    ran = run_once(root, moto.url, one_cli)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_drained(root, moto, files)
    assert list(_layers().iterdir()) == [alive]
    assert not old.parent.exists()
    assert list(root.rglob("*.credentials")) == []


@pytest.mark.slow
def test_without_a_private_directory_the_upload_works_without_the_layer(
    one_cli: str, root: Path, moto: Moto, proxy: FaultProxy
) -> None:
    """Another user's directory where ours goes; every other way a directory is not ours
    alone is the same refusal (NotPrivate), each shown above without a drain."""
    _not_ours_alone(_layers(), "other-owner")
    ran, peak = _drain(root, moto, proxy, one_cli)
    assert peak <= CLI_DEFAULT
    assert (ran.stdout + ran.stderr).count("no private directory") == 1
    assert [*_layers().parent.rglob("*.credentials"), *root.rglob("*.credentials")] == []


@pytest.mark.slow
def test_the_profiles_own_concurrency_wins(
    aws_cli: str, root: Path, moto: Moto, proxy: FaultProxy
) -> None:
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(
        "[default]\ns3 =\n  max_concurrent_requests = 3\n"
    )
    _, peak = _drain(root, moto, proxy, aws_cli, "--max-concurrency", "64")
    assert peak <= 3


@pytest.mark.slow
def test_a_profile_of_its_own_keeps_its_credentials_region_and_process(
    aws_cli: str, root: Path, moto: Moto, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials only a live config file gives (a credential_process of the profile),
    its region and its multipart settings: the upload works, with more in flight."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    process = (
        f"{sys.executable} -c \"import json; print(json.dumps({{'Version': 1, "
        "'AccessKeyId': 'testing', 'SecretAccessKey': 'testing'}))\""
    )
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(
        f"[profile work]\nregion = eu-west-1\ncredential_process = {process}\n"
        "s3 =\n  multipart_chunksize = 16MB\n"
        "[profile other]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = work\n"
    )
    Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        "[unrelated]\naws_access_key_id = A\naws_secret_access_key = B\n"
    )
    _, peak = _drain(root, moto, proxy, aws_cli, "--profile", "work")
    assert peak > CLI_DEFAULT
