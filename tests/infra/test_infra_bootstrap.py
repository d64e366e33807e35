"""The rendered user data, run for real in a private mount namespace.

/etc, /opt and /usr/local/sbin are bind-mounted copies, so the machine keeps
its own; only the package managers, the AWS CLI and systemctl are stand-ins.
The real pip installs the asset's stand-in wheels; its index is a local server
that records every request, and must see none (`--no-index`). The tests of a
failure and of the data volume, which is mounted before the venv is made, have
the venv of the module's run copied in its place (a new one is ~5 s of CPU).
"""

from __future__ import annotations

import http.server
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from awscli_uploader_infra import render
from awscli_uploader_infra.wheel import pinned_requirements
from helpers import serving
from infra_helpers import make_wheel

WHEEL_NAME = "awscli_uploader-0.0.0-py3-none-any.whl"

AWS_STUB = """#!/bin/bash
echo "aws $*" >> "$CALLS"
case "$1 ${2:-}" in
    "--version ") echo "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64" ;;
    "s3 cp") if [ -n "${FAIL_DOWNLOAD:-}" ]; then exit 1; fi; cp "$WHEEL" "${@: -1}" ;;
    *) exit 1 ;;
esac
"""
# The interpreter's `-m venv DIR` copies a venv made before; all else is the real python.
PYTHON_COPYING_A_VENV = """#!/bin/bash
if [ "$1 $2" = "-m venv" ]; then exec cp -a {venv}/. "$3"; fi
exec {python} "$@"
"""
RECORDER_STUB = '#!/bin/bash\necho "$(basename "$0") $*" >> "$CALLS"\n'
APT_CACHE_STUB = RECORDER_STUB + 'if [ -n "${NOT_PACKAGED:-}" ]; then exit 100; fi\n'

NAMESPACE_SCRIPT = """set -eu
mount --bind "$WORK/etc" /etc
mount --bind "$WORK/opt" /opt
mount --bind "$WORK/sbin" /usr/local/sbin
bash "$WORK/user-data.sh"
if [ -n "${ROOT_DIR:-}" ]; then
    findmnt -no SOURCE,FSTYPE "$ROOT_DIR" > "$WORK/mounted"
    ls -A "$ROOT_DIR" > "$WORK/listing"
    touch "$ROOT_DIR/waiting-file"
fi
"""


def make_asset(path: Path) -> None:
    """The asset as S3 holds it: a zip of a stand-in daemon wheel whose `awscli-uploader`
    prints a version and exits, and stand-ins of the pinned dependencies' wheels, which
    it requires."""
    pins = pinned_requirements()
    wheels = path.parent / "wheels"
    wheels.mkdir()
    make_wheel(
        wheels / WHEEL_NAME,
        {
            "awscli_uploader/__init__.py": b"",
            "awscli_uploader/cli.py": b"def main() -> None:\n    print('stand-in 0.0.0')\n",
            "awscli_uploader-0.0.0.dist-info/entry_points.txt": b"[console_scripts]\n"
            b"awscli-uploader = awscli_uploader.cli:main\n",
        },
        "".join(f"Requires-Dist: {name}=={version}\n" for name, version in pins.items()),
    )
    for name, version in pins.items():
        make_wheel(wheels / f"{name}-{version}-py3-none-any.whl", {f"{name}.py": b""})
    with zipfile.ZipFile(path, "w") as archive:
        for wheel in sorted(wheels.iterdir()):
            archive.write(wheel, wheel.name)


@contextmanager
def recording_index() -> Iterator[tuple[str, list[str]]]:
    """A package index on loopback that answers 404 and records every path asked for."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_error(404)

        def log_message(self, *_args: object) -> None:
            pass

    with serving(Handler) as url:
        yield f"{url}/simple/", requests


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess[str]
    work: Path
    root_dir: Path
    index_requests: list[str]

    @property
    def calls(self) -> list[str]:
        calls = self.work / "calls.log"
        return calls.read_text().splitlines() if calls.exists() else []


def _stub_tools(work: Path) -> Path:
    """`aws`, `apt-get`, `apt-cache` and `systemctl` that record what the bootstrap asks."""
    stubs = work / "stubs"
    stubs.mkdir()
    (stubs / "aws").write_text(AWS_STUB)
    for name in ("apt-get", "systemctl"):
        (stubs / name).write_text(RECORDER_STUB)
    (stubs / "apt-cache").write_text(APT_CACHE_STUB)
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    return stubs


def run_user_data(
    work: Path,
    *,
    fail_download: bool = False,
    not_packaged: bool = False,
    data_device: str = "",
    venv_copied_from: Path | None = None,
) -> Run:
    if os.geteuid() != 0:
        pytest.skip("running the bootstrap needs root for a private mount namespace")
    for tool in ("unshare", "useradd", "setfacl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    stubs = _stub_tools(work)
    shutil.copytree("/etc", work / "etc", symlinks=True)
    (work / "opt").mkdir()
    (work / "sbin").mkdir()
    make_asset(work / "asset.zip")

    python = f"python3.{sys.version_info.minor}"
    root_dir = work / "data" / "output" / "s3"
    settings = render.UploaderSettings(
        bucket_names=("sim-results",),
        root_dir=str(root_dir),
        region="eu-west-1",
        writer_group="simulation",
        extra_flags=("--dry-run",),
        python=python,
    )
    wheel = render.WheelSource(
        s3_url="s3://cdk-assets-bucket/0123abcd.zip", name=WHEEL_NAME, region="eu-west-1"
    )
    script = render.render_user_data(settings, wheel)
    if data_device:  # a loop device stands in for the EBS volume's /dev/sdf
        script = script.replace("\nDATA_DEVICE=''\n", f"\nDATA_DEVICE='{data_device}'\n")
        assert data_device in script
    lines = render.embed_commands(script)
    (work / "user-data.sh").write_text("#!/bin/bash\n" + "\n".join([*lines, "echo after"]) + "\n")

    interpreter_dir = work / "python-bin"
    interpreter_dir.mkdir()
    if venv_copied_from is None:
        (interpreter_dir / python).symlink_to(sys.executable)
    else:
        (interpreter_dir / python).write_text(
            PYTHON_COPYING_A_VENV.format(
                venv=shlex.quote(str(venv_copied_from)), python=shlex.quote(sys.executable)
            )
        )
        (interpreter_dir / python).chmod(0o755)
    env = {
        "PATH": os.pathsep.join(
            [str(stubs), str(interpreter_dir), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"]
        ),
        "HOME": str(work),
        "WORK": str(work),
        "WHEEL": str(work / "asset.zip"),
        "CALLS": str(work / "calls.log"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_RETRIES": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if fail_download:
        env["FAIL_DOWNLOAD"] = "1"
    if not_packaged:
        env["NOT_PACKAGED"] = "1"
    if data_device:
        env["ROOT_DIR"] = str(root_dir)
    with recording_index() as (index_url, requests):
        env["PIP_INDEX_URL"] = index_url  # pip asks here unless told --no-index
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", NAMESPACE_SCRIPT],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    return Run(result, work, root_dir, requests)


INSTALLS = pytest.mark.slow  # the bootstrap creates a venv and pip-installs the asset into it


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_user_data(tmp_path_factory.mktemp("bootstrap"))


@pytest.fixture
def made_venv(run: Run) -> Path:
    """The venv the module's run made, for runs that copy it instead of making their own."""
    venv = run.work / "opt" / "awscli-uploader"
    assert (venv / "bin" / "python").exists(), run.result.stdout + run.result.stderr
    return venv


@INSTALLS
def test_bootstrap_succeeds_and_the_rest_of_the_user_data_runs(run: Run) -> None:
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.result.stdout.rstrip().endswith("after")


@INSTALLS
def test_bootstrap_installs_the_wheel_into_the_venv(run: Run) -> None:
    venv = run.work / "opt" / "awscli-uploader"
    script = (venv / "bin" / "awscli-uploader").read_text()
    assert script.startswith("#!/opt/awscli-uploader/bin/python")
    # Outside the namespace /opt is the machine's own: call the venv's python by its real path.
    output = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "from awscli_uploader.cli import main; main()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert output == "stand-in 0.0.0\n"
    assert (
        "aws s3 cp --only-show-errors --region eu-west-1 s3://cdk-assets-bucket/0123abcd.zip "
        "/opt/awscli-uploader/dist/wheels.zip"
    ) in run.calls


@INSTALLS
def test_bootstrap_installs_the_pinned_dependencies_from_the_asset_alone(run: Run) -> None:
    venv = run.work / "opt" / "awscli-uploader"
    versions = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-I",
            "-c",
            "import importlib.metadata as m, sys; "
            "print(*(f'{n}=={m.version(n)}' for n in sys.argv[1:]))",
            *pinned_requirements(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert versions == [f"{n}=={v}" for n, v in pinned_requirements().items()]
    assert run.index_requests == []  # --no-index: not one look at an index


@INSTALLS
def test_bootstrap_writes_the_environment_file(run: Run) -> None:
    env_file = (run.work / "etc" / "awscli-uploader" / "env").read_text()
    assert env_file == (
        f"S3_ROOT_DIR={run.root_dir}\n"
        "S3_UPLOAD_INTERVAL=60\n"
        "FILE_STABILITY_SECONDS=2\n"
        "AWS_REGION=eu-west-1\n"
        f"AWS_CLI={run.work / 'stubs' / 'aws'}\n"
        "AWSCLI_UPLOADER_FLAGS=--dry-run\n"
        "S3_UPLOAD_LIFECYCLE_HOOK=\n"  # no group here: nothing to complete
        "S3_UPLOAD_AUTOSCALING_GROUP=\n"
        "S3_UPLOAD_DATA_VOLUME=\n"
    )


@INSTALLS
def test_bootstrap_writes_the_unit_and_then_enables_and_starts_it(run: Run) -> None:
    unit = run.work / "etc" / "systemd" / "system" / render.SERVICE_NAME
    assert "ExecStart=/opt/awscli-uploader/bin/awscli-uploader $AWSCLI_UPLOADER_FLAGS" in (
        unit.read_text()
    )
    assert run.calls[-2:] == [
        "systemctl daemon-reload",
        "systemctl enable --now awscli-uploader.service",
    ]


@INSTALLS
def test_root_dir_belongs_to_the_service_user_and_the_writer_group(run: Run) -> None:
    passwd = (run.work / "etc" / "passwd").read_text()
    group = (run.work / "etc" / "group").read_text()
    user_line = next(line for line in passwd.splitlines() if line.startswith("awscli-uploader:"))
    uid = int(user_line.split(":")[2])
    assert user_line.endswith(":/var/lib/awscli-uploader:/sbin/nologin")
    simulation = next(line for line in group.splitlines() if line.startswith("simulation:"))
    assert simulation.split(":")[3] == "awscli-uploader"
    info = run.root_dir.stat()
    assert info.st_uid == uid
    assert info.st_gid == int(simulation.split(":")[2])
    assert oct(info.st_mode & 0o7777) == oct(0o2775)
    acl = subprocess.run(
        ["getfacl", "--omit-header", "--numeric", str(run.root_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"default:user:{uid}:rwx" in acl
    assert f"default:group:{info.st_gid}:rwx" in acl


@INSTALLS
def test_a_failed_bootstrap_stops_the_user_data(tmp_path: Path, made_venv: Path) -> None:
    run = run_user_data(tmp_path, fail_download=True, venv_copied_from=made_venv)
    assert run.result.returncode == 1
    assert "after" not in run.result.stdout
    assert run.calls[-1].startswith("aws s3 cp ")  # it stopped at the download, nowhere else
    assert not any(call.startswith("systemctl") for call in run.calls)


def test_a_missing_python_package_stops_with_one_clear_line(tmp_path: Path) -> None:
    if shutil.which("dnf"):
        pytest.skip("this machine has dnf: the apt branch can't be reached")
    run = run_user_data(tmp_path, not_packaged=True)
    assert run.result.returncode == 1
    (line,) = [x for x in run.result.stderr.splitlines() if x.startswith("awscli-uploader")]
    assert line.startswith(f"awscli-uploader bootstrap: python3.{sys.version_info.minor}-venv ")
    assert "is not packaged on " in line and "set python= to one that is" in line
    assert not any(call.startswith(("apt-get install", "systemctl")) for call in run.calls)


@contextmanager
def loop_device(path: Path) -> Iterator[str]:
    """A 320 MiB loop device: the stand-in for a new, blank EBS data volume."""
    for tool in ("losetup", "mkfs.xfs", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    with path.open("wb") as image:
        image.truncate(320 * 1024 * 1024)
    found = subprocess.run(
        ["losetup", "--find", "--show", str(path)], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        pytest.skip(f"no loop device here: {found.stderr.strip()}")
    try:
        yield found.stdout.strip()
    finally:
        subprocess.run(["losetup", "--detach", found.stdout.strip()], check=False)


@INSTALLS
def test_a_blank_data_volume_is_formatted_mounted_at_the_root_and_kept_at_the_next_boot(
    tmp_path: Path, made_venv: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a loop device needs root")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with loop_device(tmp_path / "volume.img") as device:
        first = run_user_data(tmp_path / "first", data_device=device, venv_copied_from=made_venv)
        assert first.result.returncode == 0, first.result.stdout + first.result.stderr
        assert (first.work / "mounted").read_text().split() == [device, "xfs"]
        fstab = (first.work / "etc" / "fstab").read_text().splitlines()[-1].split()
        assert fstab[0].startswith("UUID=") and fstab[1:] == [
            str(first.root_dir),
            "xfs",
            "defaults,nofail",
            "0",
            "2",
        ]
        assert (first.work / "listing").read_text() == ""  # xfs: no lost+found in the root
        # A second instance's bootstrap on the same volume: not formatted again.
        second = run_user_data(tmp_path / "second", data_device=device, venv_copied_from=made_venv)
        assert second.result.returncode == 0, second.result.stdout + second.result.stderr
        assert (second.work / "listing").read_text() == "waiting-file\n"
