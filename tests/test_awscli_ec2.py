"""The seam's calls beyond S3, with each AWS CLI: the access check on AWS (STS), the data
volume's release (EC2, against moto), and the termination hook's two calls (Auto Scaling:
moto has neither, so a small server answers them as Auto Scaling does and keeps what each
CLI sent)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from helpers import REGION, Moto, serving

from awscli_uploader.s3.awscli import AwsCli


def _cli(aws_cli: str, url: str) -> AwsCli:
    return AwsCli(executable=aws_cli, region=REGION, endpoint_url=url)


def test_the_access_check_on_aws_names_the_account(moto: Moto, aws_cli: str) -> None:
    identity = _cli(aws_cli, moto.url).caller_identity()
    assert identity["Account"] == "123456789012" and identity["Arn"].startswith("arn:aws:")


def test_the_data_volume_is_released_and_kept(moto: Moto, aws_cli: str) -> None:
    """DeleteOnTermination of one device, set and unset: the JSON mapping each CLI sends."""
    ec2 = moto.service("ec2")
    # one of moto's stock images (all of them in one answer cost ~2.5 s of CPU), with a root
    # device moto's modify-instance-attribute knows
    sda1 = [{"Name": "root-device-name", "Values": ["/dev/sda1"]}]
    image = ec2.describe_images(Filters=sda1)["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    device = instance["RootDeviceName"]

    def deleted_with_it() -> bool:
        [reservation] = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"]
        mappings = reservation["Instances"][0]["BlockDeviceMappings"]
        [mapping] = [m for m in mappings if m["DeviceName"] == device]
        return bool(mapping["Ebs"]["DeleteOnTermination"])

    cli = _cli(aws_cli, moto.url)
    cli.set_delete_on_termination(instance["InstanceId"], device, delete=False)
    assert not deleted_with_it()
    cli.set_delete_on_termination(instance["InstanceId"], device, delete=True)
    assert deleted_with_it()


class _AutoScaling(BaseHTTPRequestHandler):
    """Answers every Query API call as Auto Scaling answers these two (an empty result) and
    keeps the form each request carried."""

    protocol_version = "HTTP/1.1"
    calls: list[dict[str, str]]

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = dict(urllib.parse.parse_qsl(body))
        self.calls.append(form)
        action = form["Action"]
        answer = (
            f'<{action}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            f"<{action}Result/><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def autoscaling() -> Iterator[tuple[str, list[dict[str, str]]]]:
    calls: list[dict[str, str]] = []
    with serving(type("Handler", (_AutoScaling,), {"calls": calls})) as url:
        yield url, calls


def test_the_termination_hook_is_extended_then_completed(
    autoscaling: tuple[str, list[dict[str, str]]], aws_cli: str
) -> None:
    url, calls = autoscaling
    cli = _cli(aws_cli, url)
    cli.record_lifecycle_action_heartbeat("drain-hook", "sim-uploader", "i-0123456789abcdef0")
    cli.complete_lifecycle_action("drain-hook", "sim-uploader", "i-0123456789abcdef0")
    common = {
        "LifecycleHookName": "drain-hook",
        "AutoScalingGroupName": "sim-uploader",
        "InstanceId": "i-0123456789abcdef0",
        "Version": "2011-01-01",
    }
    assert calls == [
        {"Action": "RecordLifecycleActionHeartbeat", **common},
        {"Action": "CompleteLifecycleAction", "LifecycleActionResult": "CONTINUE", **common},
    ]
