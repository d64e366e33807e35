"""`python -m bench.launch ARGS` runs `python -m awscli_uploader ARGS` and, at exit, reports on
stderr where the package came from, the peak RSS of this process and of its largest child, and
the CPU seconds (user + system) of this process and of its children.

Peak RSS is VmHWM of this process's own memory: the benchmark's `ru_maxrss` of its child
would also count the benchmark's pages that the fork copied before the exec. The aws
processes fork from here, so `RUSAGE_CHILDREN` is theirs.
"""

from __future__ import annotations

import atexit
import resource
import runpy
import sys

import awscli_uploader


def peak_kib() -> str:
    """VmHWM of this process, in KiB."""
    with open("/proc/self/status") as status:
        return next(line for line in status if line.startswith("VmHWM:")).split()[1]


def report() -> None:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    module = awscli_uploader.__file__
    sys.stderr.write(
        f"bench: module {module} hwm_kib {peak_kib()} kids_kib {kids.ru_maxrss} "
        f"cpu {own.ru_utime + own.ru_stime:.3f} kids_cpu {kids.ru_utime + kids.ru_stime:.3f}\n"
    )


if __name__ == "__main__":
    atexit.register(report)
    sys.argv[0] = "awscli_uploader"
    runpy.run_module("awscli_uploader", run_name="__main__", alter_sys=True)
