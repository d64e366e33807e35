"""`python -m bench.link_probe FILE LINK` exits 0 when this process may hard-link FILE (the
link is removed again), 1 when it may not: run with the daemon's privileges, it tells whether
the `notlinkable` case measures what it says.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    source, link = argv
    try:
        os.link(source, link)
    except OSError as exc:
        print(f"link_probe: {source}: {exc.strerror}", file=sys.stderr)
        return 1
    os.unlink(link)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
