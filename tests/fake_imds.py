"""A small, obvious stand-in for the EC2 instance metadata service (moto has none usable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from helpers import serving


@dataclass
class ImdsState:
    v2: bool = True  # answer PUT /latest/api/token
    v1: bool = True  # answer GETs without a token
    instance_id: str = "i-0123456789abcdef0"
    spot_action: dict[str, str] | None = None
    rebalance: dict[str, str] | None = None
    lifecycle_state: str | None = None  # autoscaling/target-lifecycle-state
    region: str = "eu-central-1"
    requests: list[str] = field(default_factory=list)


TOKEN = "fake-token"


def _handler(state: ImdsState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            state.requests.append(f"PUT {self.path}")
            if self.path == "/latest/api/token" and state.v2:
                self._send(200, TOKEN)
            else:
                self._send(403 if self.path == "/latest/api/token" else 404)

        def do_GET(self) -> None:
            token = self.headers.get("X-aws-ec2-metadata-token")
            state.requests.append(f"GET {self.path} token={bool(token)}")
            if token != TOKEN and not state.v1:
                self._send(401)
                return
            answers = {
                "instance-id": state.instance_id,
                "spot/instance-action": state.spot_action and json.dumps(state.spot_action),
                "events/recommendations/rebalance": state.rebalance and json.dumps(state.rebalance),
                "autoscaling/target-lifecycle-state": state.lifecycle_state,
                "placement/region": state.region,
            }
            found = answers.get(self.path.removeprefix("/latest/meta-data/"))
            if found:
                self._send(200, found)
            else:
                self._send(404)

    return Handler


@contextmanager
def fake_imds(state: ImdsState) -> Iterator[str]:
    with serving(_handler(state)) as url:
        yield url
