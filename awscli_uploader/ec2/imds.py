"""The EC2 instance metadata service: are we on EC2, and is a spot interruption coming?

IMDSv2 first (a session token), IMDSv1 when the token call is refused; one
second timeouts, no proxy.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL = "21600"


@dataclass(frozen=True)
class Imds:
    endpoint: str = DEFAULT_ENDPOINT
    disabled: bool = False
    timeout: float = 1.0

    def _open(self, request: urllib.request.Request) -> bytes:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=self.timeout) as response:
            body: bytes = response.read()
            return body

    def _token(self) -> str | None:
        request = urllib.request.Request(
            self.endpoint.rstrip("/") + "/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL},
        )
        try:
            return self._open(request).decode("ascii", "replace").strip()
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def get(self, path: str) -> str | None:
        """GET /latest/meta-data/PATH; None on 404, no service, or IMDS disabled."""
        if self.disabled:
            return None
        token = self._token()
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        request = urllib.request.Request(
            self.endpoint.rstrip("/") + "/latest/meta-data/" + path, headers=headers
        )
        try:
            return self._open(request).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def instance_id(self) -> str | None:
        """The instance id when running on EC2, else None."""
        found = self.get("instance-id")
        return found.strip() if found and found.strip() else None

    def region(self) -> str | None:
        """The instance's own region (placement/region)."""
        found = self.get("placement/region")
        return found.strip() if found and found.strip() else None

    def spot_action(self) -> SpotNotice | None:
        """The pending spot interruption, if AWS has announced one."""
        body = self.get("spot/instance-action")
        if not body:
            return None
        return parse_spot_notice(body)


@dataclass(frozen=True)
class SpotNotice:
    action: str
    time: str


def parse_spot_notice(body: str) -> SpotNotice | None:
    """`{"action": "terminate", "time": "2026-11-23T12:00:00Z"}` → SpotNotice."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "action" not in data:
        return None
    return SpotNotice(str(data["action"]), str(data.get("time", "")))
