"""Shell completion for bash and zsh, through click."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import run_in_process

VAR = "_AWSCLI_UPLOADER_COMPLETE"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F _awscli_uploader_completion awscli-uploader"),
     ("zsh", "#compdef awscli-uploader")],
)  # fmt: skip
def test_completion_scripts(shell: str, marker: str) -> None:
    result = run_in_process(env={VAR: f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("awscli-uploader --log", ["--log-format"]),
        ("awscli-uploader --log-format ", ["text", "json"]),
        ("awscli-uploader st", ["status"]),
        ("awscli-uploader status --j", ["--json"]),
        ("awscli-uploader --bucket", ["--bucket-map"]),
    ],
)
def test_bash_completes_words(words: str, expected: list[str]) -> None:
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    env = {VAR: "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = run_in_process(env=env)
    assert result.returncode == 0, result.stderr
    values = [line.split(",", 1)[1] for line in result.stdout.splitlines()]
    assert values == expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_accepts_the_script() -> None:
    script = run_in_process(env={VAR: "bash_source"}).stdout
    result = subprocess.run(
        ["bash", "-c", f"{script}\ncomplete -p awscli-uploader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "_awscli_uploader_completion" in result.stdout
