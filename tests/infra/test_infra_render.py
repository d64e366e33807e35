"""The plain-file templates and their rendering, without aws_cdk."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from awscli_uploader_infra import render
from infra_helpers import exposure, heredoc, shellcheck, systemd_verify

from awscli_uploader.local.state import StateDir
from awscli_uploader.s3.awscli import API_TIMEOUT

SETTINGS = render.UploaderSettings(
    bucket_names=("sim-results", "sim.logs-2"),
    root_dir="/data/output/s3",
    region="eu-west-1",
    extra_flags=("--endpoint-url=http://127.0.0.1:9000", "--dry-run"),
)
WHEEL = render.WheelSource(
    s3_url="s3://cdk-assets-123-eu-west-1/abc123.whl",
    name="awscli_uploader-0.1.0-py3-none-any.whl",
    region="eu-west-1",
)


def rendered(**changes: Any) -> str:
    return render.render_user_data(dataclasses.replace(SETTINGS, **changes), WHEEL)


def test_template_placeholders_are_the_rendered_values() -> None:
    template = render.USER_DATA_TEMPLATE.read_text()
    assert render.placeholders(template) == set(render.placeholder_values(SETTINGS, WHEEL))


def test_rendered_script_quotes_every_value_and_leaves_no_placeholder() -> None:
    script = rendered()
    assert render.placeholders(script) == set()
    for line in (
        "ROOT_DIR='/data/output/s3'",
        "REGION='eu-west-1'",
        "INTERVAL='60'",
        "STABILITY='2'",
        "EXTRA_FLAGS='--endpoint-url=http://127.0.0.1:9000 --dry-run'",
        "WHEEL_S3_URL='s3://cdk-assets-123-eu-west-1/abc123.whl'",
        "WHEEL_NAME='awscli_uploader-0.1.0-py3-none-any.whl'",
    ):
        assert f"\n{line}\n" in script
    assert script.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in script


def test_environment_file_uses_the_daemon_variable_names() -> None:
    env_file = heredoc(rendered().replace("<<EOF", "<<'EOF'"), "EOF")
    names = [line.split("=", 1)[0] for line in env_file.splitlines()]
    assert names == [
        "S3_ROOT_DIR",
        "S3_UPLOAD_INTERVAL",
        "FILE_STABILITY_SECONDS",
        "AWS_REGION",
        "AWS_CLI",
        "AWSCLI_UPLOADER_FLAGS",
        "S3_UPLOAD_LIFECYCLE_HOOK",
        "S3_UPLOAD_AUTOSCALING_GROUP",
        "S3_UPLOAD_DATA_VOLUME",
    ]


def test_the_drain_hook_reaches_the_daemons_environment() -> None:
    hook = render.DrainHook(hook_name="awscli-uploader-drain", group_name="Spot-uploader")
    script = rendered(drain_hook=hook)
    assert "\nLIFECYCLE_HOOK='awscli-uploader-drain'\n" in script
    assert "\nAUTOSCALING_GROUP='Spot-uploader'\n" in script
    env_file = heredoc(script.replace("<<EOF", "<<'EOF'"), "EOF")
    assert "S3_UPLOAD_LIFECYCLE_HOOK=$LIFECYCLE_HOOK\n" in env_file
    assert "S3_UPLOAD_AUTOSCALING_GROUP=$AUTOSCALING_GROUP\n" in env_file
    assert "\nLIFECYCLE_HOOK=''\n" in rendered()  # none: the daemon finds both empty


@pytest.mark.parametrize(("hook", "volume"), [("awscli-uploader-drain", "/dev/sdf"), ("", "")])
def test_the_data_volume_reaches_the_daemon_only_with_the_hook(hook: str, volume: str) -> None:
    """The daemon refuses --data-volume without --lifecycle-hook: a construct with a data
    device but no drain hook must not hand it one."""
    env_file = heredoc(rendered().replace("<<EOF", "<<'EOF'"), "EOF")
    (line,) = [line for line in env_file.splitlines() if line.startswith("S3_UPLOAD_DATA_VOLUME=")]
    expanded = subprocess.run(
        ["bash", "-c", f"cat <<EOF\n{line}\nEOF\n"],
        env={"LIFECYCLE_HOOK": hook, "DATA_DEVICE": "/dev/sdf"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert expanded == f"S3_UPLOAD_DATA_VOLUME={volume}\n"


@pytest.mark.parametrize(
    "directive",
    [
        "Wants=network-online.target",
        "After=network-online.target",
        "User=awscli-uploader",
        "EnvironmentFile=/etc/awscli-uploader/env",
        "ExecStart=/opt/awscli-uploader/bin/awscli-uploader $AWSCLI_UPLOADER_FLAGS",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        "TimeoutStopSec=300",
        "Restart=on-failure",
        "WantedBy=multi-user.target",
    ],
)
def test_unit_has(directive: str) -> None:
    assert directive in render.unit_text(rendered()).splitlines()


def test_the_unit_waits_for_ready_as_long_as_the_daemon_s_own_bounds_allow() -> None:
    """Type=notify: systemd's default 90 s start timeout would fail a daemon whose access
    check takes up to its 300 s hard limit, then restart it in a loop. The bound above it
    (the creation signal's timeout) is test_infra_spot_stack's."""
    (line,) = [
        line
        for line in render.unit_text(rendered()).splitlines()
        if line.startswith("TimeoutStart")
    ]
    seconds = int(line.removeprefix("TimeoutStartSec="))
    # the access check's hard limit, then two minutes for the metadata service's tries (10,
    # with 1 s timeouts), the lock and the recovery
    assert seconds >= API_TIMEOUT + 120


def test_script_creates_root_for_the_writer_group_then_enables_and_starts_the_unit() -> None:
    script = rendered(writer_group="simulation")
    assert "WRITER_GROUP='simulation'" in script
    assert 'install -d -o "$SERVICE_USER" -g "$WRITER_GROUP" -m 2775 "$ROOT_DIR"' in script
    assert script.index("cat > \"$UNIT_FILE\" <<'UNIT'") < script.index(
        "systemctl enable --now awscli-uploader.service"
    )
    assert script.rstrip().endswith("systemctl enable --now awscli-uploader.service")


@pytest.mark.parametrize(
    ("stability", "text"), [(2, "2"), (2.0, "2"), (0, "0"), (2.5, "2.5"), (0.25, "0.25")]
)
def test_stability_is_written_as_plain_seconds(stability: float, text: str) -> None:
    assert f"\nSTABILITY='{text}'\n" in rendered(stability=stability)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bucket_names": ()}, "non-empty list"),
        ({"bucket_names": ("ab",)}, "bucket name 'ab' is invalid: use 3-63 characters"),
        ({"bucket_names": ("a" * 64,)}, "is invalid: use 3-63"),
        ({"bucket_names": ("My-Bucket",)}, "bucket name 'My-Bucket' is invalid"),
        ({"bucket_names": ("bucket_one",)}, "bucket name 'bucket_one' is invalid"),
        ({"bucket_names": ("-bucket",)}, "starting and ending with a letter or digit"),
        ({"bucket_names": ("arn:aws:s3:::b",)}, "is invalid"),
        ({"bucket_names": ("abc", "abc")}, "duplicates"),
        ({"root_dir": "output/s3"}, "root_dir 'output/s3' is invalid: use an absolute path"),
        ({"root_dir": "/"}, "root_dir '/' is invalid"),
        ({"root_dir": "/data/../etc"}, "no '.' or '..' parts"),
        ({"root_dir": "/data/my output"}, "root_dir '/data/my output' is invalid"),
        ({"root_dir": "/data/o'brien"}, "is invalid"),
        ({"interval": 0}, "interval 0 is invalid: use a positive number"),
        ({"interval": -5}, "interval -5 is invalid"),
        ({"interval": 1.5}, "interval 1.5 is invalid: use whole seconds"),
        ({"interval": True}, "interval True is invalid"),
        ({"stability": -1}, "stability -1 is invalid: use 0 or more"),
        ({"stability": float("nan")}, "stability nan is invalid"),
        ({"region": "Europe"}, "region 'Europe' is invalid"),
        ({"writer_group": "Sim Group"}, "writer_group 'Sim Group' is invalid"),
        ({"extra_flags": ("--endpoint-url http://x",)}, "one word without spaces or quotes"),
        ({"extra_flags": ("--x='y'",)}, "extra flag"),
        ({"python": "python2"}, "python 'python2' is invalid"),
        ({"install_dir": "opt"}, "install_dir 'opt' is invalid"),
        ({"data_device": "/dev/nvme1n1"}, "data_device '/dev/nvme1n1' is invalid"),
        ({"drain_hook": render.DrainHook("a hook", "g")}, "lifecycle hook name 'a hook'"),
        ({"drain_hook": render.DrainHook("h", "g'1")}, 'group name "g\'1" is invalid'),
    ],
)
def test_invalid_settings_are_rejected_with_a_clear_message(
    changes: dict[str, Any], message: str
) -> None:
    settings = dataclasses.replace(SETTINGS, **changes)
    with pytest.raises(render.InvalidSettingsError, match=r"^awscli-uploader: ") as raised:
        render.render_user_data(settings, WHEEL)
    assert message in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    settings = dataclasses.replace(SETTINGS, bucket_names=("X",), interval=0, region="?")
    assert len(render.settings_problems(settings)) == 3


def test_unresolved_tokens_are_left_to_deploy_time() -> None:
    token = "${Token[AWS.Region.7]}"
    settings = dataclasses.replace(SETTINGS, region=token, bucket_names=("${Token[Bucket.1]}",))
    wheel = dataclasses.replace(WHEEL, s3_url="s3://${Token[X.2]}/k.whl", region=token)
    script = render.render_user_data(settings, wheel, is_token=lambda value: "${Token[" in value)
    assert f"\nREGION='{token}'\n" in script


@pytest.mark.parametrize(
    ("wheel", "message"),
    [
        (dataclasses.replace(WHEEL, name="package.zip"), "wheel file name"),
        (dataclasses.replace(WHEEL, s3_url="https://example.com/x.whl"), "wheel S3 URL"),
    ],
)
def test_invalid_wheel_source_is_rejected(wheel: render.WheelSource, message: str) -> None:
    with pytest.raises(render.InvalidSettingsError, match=message):
        render.render_user_data(SETTINGS, wheel)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"A": "x"}, r"no value for placeholders \['B'\]"),
        ({"A": "it's", "B": "x"}, "may not contain a quote"),
        ({"A": "x\ny", "B": "x"}, "may not contain a quote or newline"),
    ],
)
def test_substitute_refuses_what_would_break_the_quoting(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(render.InvalidSettingsError, match=message):
        render.substitute("A='@A@' B='@B@'", values)


def test_template_and_rendered_script_pass_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(rendered())
    for path in (render.USER_DATA_TEMPLATE, script):
        result = shellcheck(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_commands_pass_shellcheck_and_run_the_script_as_its_own_file(
    tmp_path: Path,
) -> None:
    lines = render.embed_commands(rendered())
    outer = tmp_path / "outer.sh"
    outer.write_text("#!/bin/bash\n" + "\n".join(lines) + "\n")
    result = shellcheck(outer)
    assert result.returncode == 0, result.stdout + result.stderr
    assert heredoc(outer.read_text(), "AWSCLI_UPLOADER_BOOTSTRAP") == render.without_comments(
        rendered()
    )
    assert lines[-1] == f"{render.BOOTSTRAP_PATH} || exit 1"


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    install_dir = tmp_path / "venv"
    executable = install_dir / "bin" / "awscli-uploader"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    unit = tmp_path / render.SERVICE_NAME
    unit.write_text(render.unit_text(rendered(install_dir=str(install_dir))))
    result = systemd_verify(unit)
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr


UPLOADER_EXPOSURE = 1.6  # systemd-analyze security's rating of the unit: it may only fall


def test_rendered_unit_is_hardened_to_its_current_exposure_or_less(tmp_path: Path) -> None:
    unit = tmp_path / render.SERVICE_NAME
    text = render.unit_text(rendered())
    unit.write_text(text)
    assert exposure(unit) <= UPLOADER_EXPOSURE
    assert "\nCapabilityBoundingSet=CAP_LEASE\n" in text
    assert "\nAmbientCapabilities=CAP_LEASE\n" in text
    # '-': a root that is not there yet is the daemon's to wait for, not a 226/NAMESPACE.
    assert f"\nReadWritePaths=-{SETTINGS.root_dir}\n" in text


def test_embedded_scripts_leave_out_comment_lines_only() -> None:
    script = "#!/bin/bash\n# why\n  # indented why\necho '# kept' # kept too\n"
    assert render.without_comments(script) == "#!/bin/bash\necho '# kept' # kept too\n"


def test_coordinator_runs_as_its_own_unit_after_the_uploader(tmp_path: Path) -> None:
    lines = render.coordinator_commands("/data/s3", ['run-the-simulation --out "$S3_ROOT_DIR"'])
    text = "\n".join(lines) + "\n"
    script = heredoc(text, "AWSCLI_UPLOADER_COORDINATOR")
    assert script == (
        '#!/bin/bash\nexport S3_ROOT_DIR=/data/s3\nrun-the-simulation --out "$S3_ROOT_DIR"\n'
    )
    unit = heredoc(text, "UNIT")
    assert unit == render.COORDINATOR_UNIT
    assert f"\nAfter={render.SERVICE_NAME}\n" in unit
    assert lines[-1] == (
        f"systemctl start --no-block {render.TERMINATING_PATH} {render.COORDINATOR_SERVICE}"
    )
    outer = tmp_path / "outer.sh"
    outer.write_text("#!/bin/bash\n" + text)
    result = shellcheck(outer)
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / render.COORDINATOR_SERVICE
    path.write_text(unit.replace(render.COORDINATOR_PATH, "/bin/true"))
    verified = systemd_verify(path)
    assert verified.returncode == 0, verified.stderr
    assert str(path) not in verified.stderr, verified.stderr


def test_the_coordinator_stops_once_the_daemon_notes_that_the_instance_is_going(
    tmp_path: Path,
) -> None:
    """The daemon notes a spot notice or the group's termination in its state directory;
    the path unit sees the note and starts a target that conflicts with the coordinator's
    unit, so systemd stops the coordinator. Started with it, not enabled (neither is)."""
    text = "\n".join(render.coordinator_commands("/data/s3", ["simulate"])) + "\n"
    units = {}
    for line, body in re.findall(r"cat > (\S+) <<'UNIT'\n(.*?\n)UNIT\n", text, re.DOTALL):
        units[Path(line).name] = body
    assert set(units) == {
        render.COORDINATOR_SERVICE,
        render.TERMINATING_PATH,
        render.TERMINATING_TARGET,
    }
    note = StateDir(Path("/data/s3")).terminating  # where the package writes it
    assert units[render.TERMINATING_PATH] == (
        f"[Path]\nPathExists={note}\nUnit={render.TERMINATING_TARGET}\n"
    )
    assert f"\nConflicts={render.COORDINATOR_SERVICE}\n" in units[render.TERMINATING_TARGET]
    assert f"{render.TERMINATING_PATH} {render.COORDINATOR_SERVICE}" in text.splitlines()[-1]
    for name, body in units.items():
        (tmp_path / name).write_text(body.replace(render.COORDINATOR_PATH, "/bin/true"))
    verified = systemd_verify(tmp_path / render.TERMINATING_PATH)
    assert verified.returncode == 0, verified.stderr
    assert str(tmp_path) not in verified.stderr, verified.stderr


def test_kms_keys_get_their_own_statement_on_those_keys_only() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    statements = render.policy_statements(["sim-results"], [key])
    assert statements[-1] == {
        "Sid": "AwscliUploaderKms",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": [key],
    }
    assert "kms" not in json.dumps(render.policy_statements(["sim-results"]))


def test_a_kms_alias_is_refused() -> None:
    settings = dataclasses.replace(
        SETTINGS, kms_key_arns=("arn:aws:kms:eu-west-1:123456789012:alias/results",)
    )
    with pytest.raises(render.InvalidSettingsError, match="KMS key ARN"):
        render.validate(settings)


def test_policy_grants_exactly_the_four_actions_on_the_buckets() -> None:
    document = render.policy_document(["sim-results", "sim.logs-2"])
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AwscliUploaderObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                "Resource": ["arn:aws:s3:::sim-results/*", "arn:aws:s3:::sim.logs-2/*"],
            },
            {
                "Sid": "AwscliUploaderListBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": ["arn:aws:s3:::sim-results", "arn:aws:s3:::sim.logs-2"],
            },
        ],
    }


def test_plain_policy_file_is_json_with_one_bucket_placeholder() -> None:
    text = render.POLICY_TEMPLATE.read_text()
    document = json.loads(text)
    resources = [r for statement in document["Statement"] for r in statement["Resource"]]
    assert resources == ["arn:aws:s3:::@BUCKET@/*", "arn:aws:s3:::@BUCKET@"]
    assert '"*"' not in text
    assert "s3:*" not in text
