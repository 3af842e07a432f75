"""The decode sandbox's processes end when the process that started them ends, however it ends.

A SIGKILLed operator runs no cleanup: its fork server, the workers forked from it and multiprocessing's
resource tracker were re-parented to init and lived on (75 processes, 2.7 GiB after one day of tests). In a
pod the container takes them along; run as `helm-e2e run` (local use, the demo, the tests, a VM) they
leaked on every crash. Linux's parent-death signal ends each one with its parent: the fork server with the
operator, each worker with the fork server; the resource tracker then reads EOF and exits by itself.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> bool:
    """SIGKILL this process when its parent (the thread that forked it) ends; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
