from __future__ import annotations

import pytest
from fake_imds import ImdsState, fake_imds
from helpers import free_port

from awscli_uploader.ec2.imds import Imds, SpotNotice, parse_spot_notice


def test_v2_token_is_used_first() -> None:
    state = ImdsState(v1=False)
    with fake_imds(state) as url:
        assert Imds(endpoint=url).instance_id() == "i-0123456789abcdef0"
    assert state.requests[:2] == [
        "PUT /latest/api/token",
        "GET /latest/meta-data/instance-id token=True",
    ]


def test_v1_fallback_when_token_refused() -> None:
    state = ImdsState(v2=False)
    with fake_imds(state) as url:
        assert Imds(endpoint=url).instance_id() == "i-0123456789abcdef0"
    assert "GET /latest/meta-data/instance-id token=False" in state.requests


def test_no_imds_means_not_ec2() -> None:
    assert Imds(endpoint=f"http://127.0.0.1:{free_port()}", timeout=0.5).instance_id() is None


def test_disabled_never_asks() -> None:
    state = ImdsState()
    with fake_imds(state) as url:
        assert Imds(endpoint=url, disabled=True).instance_id() is None
    assert state.requests == []


def test_spot_notice() -> None:
    state = ImdsState()
    with fake_imds(state) as url:
        imds = Imds(endpoint=url)
        assert imds.spot_action() is None
        state.spot_action = {"action": "terminate", "time": "2026-11-24T00:02:00Z"}
        assert imds.spot_action() == SpotNotice("terminate", "2026-11-24T00:02:00Z")


@pytest.mark.parametrize(
    ("body", "notice"),
    [
        ('{"action": "stop", "time": "t"}', SpotNotice("stop", "t")),
        ("not json", None),
        ('["list"]', None),
        ('{"time": "t"}', None),
    ],
)
def test_parse_spot_notice(body: str, notice: SpotNotice | None) -> None:
    assert parse_spot_notice(body) == notice
