"""`python -m bench.moto_server -H HOST -p PORT`: moto's own server, plus a channel on stdin
through which the benchmark puts objects straight into the backend (a put over HTTP costs
moto ~10 ms, too slow for 100,000 objects).

Each line on stdin is `{"bucket": NAME, "objects": [[KEY, SIZE], ...]}`; once its objects are
in, the program answers `preloaded` on stdout. Stdout answers the benchmark and nothing else:
whatever moto prints goes to stderr, the server's log.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import main


def preload(orders: TextIO, reply: TextIO) -> None:
    """Put each order's objects (SIZE bytes of `u`) into moto's backend, then say so."""
    for line in orders:
        order = json.loads(line)
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, size in order["objects"]:
            backend.put_object(order["bucket"], key, b"u" * size, disable_notification=True)
        reply.write("preloaded\n")
        reply.flush()


if __name__ == "__main__":
    reply, sys.stdout = sys.stdout, sys.stderr
    threading.Thread(target=preload, args=(sys.stdin, reply), daemon=True).start()
    main(sys.argv[1:])
