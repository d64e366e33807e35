"""Run the daemon against an embedded local S3 (a moto server on loopback) and show what landed.

Starts moto on a free port, creates two buckets with the AWS CLI, writes sample
files under a temporary root, runs the daemon until the files are gone locally,
stops it with SIGTERM and lists the buckets. Touches no real AWS account.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BUCKETS = ("distributed-colony", "simulation-logs")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="awscli-uploader-demo-"))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_CONFIG_FILE": str(work / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": str(REPO),
    }
    env.pop("AWS_PROFILE", None)
    url = f"http://127.0.0.1:{free_port()}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("moto server did not start") from None
                time.sleep(0.2)
        aws = ["aws", "--endpoint-url", url, "--region", "eu-west-1"]
        for bucket in BUCKETS:
            subprocess.run([*aws, "s3", "mb", f"s3://{bucket}"], check=True, env=env)
        root = work / "output" / "s3"
        samples = {
            "distributed-colony/images_shots/frame 0001.png": os.urandom(40_000),
            "distributed-colony/images_shots/frame 0002.png": os.urandom(40_000),
            "distributed-colony/data/state.bin": os.urandom(9 * 1024 * 1024),
            "simulation-logs/coordinator.log": b"step 1\nstep 2\n",
        }
        for rel, data in samples.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        print(f"demo: {len(samples)} files under {root}; starting the daemon", flush=True)
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "awscli_uploader",
                "-d",
                str(root),
                "-i",
                "1",
                "-s",
                "1",
                "--endpoint-url",
                url,
            ],
            env=env,
        )
        deadline = time.monotonic() + 120
        while any(p.is_file() for p in root.rglob("*") if ".awscli-uploader" not in p.parts):
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                print("demo: FAILED, files are still local", file=sys.stderr)
                return 1
            time.sleep(0.5)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
        print(f"demo: daemon exited {code}; what landed in S3:", flush=True)
        for bucket in BUCKETS:
            subprocess.run([*aws, "s3", "ls", "--recursive", f"s3://{bucket}"], check=True, env=env)
        return code
    finally:
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    sys.exit(main())
