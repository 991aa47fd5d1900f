"""Keep freed memory out of Chroma's files: glibc hands out zero-filled blocks, scrubs freed ones.

Chroma's native HNSW writer persists buffers it never initialised (`length.bin`, the unused
slots of `data_level0.bin`); glibc's `malloc` reuses freed blocks as they are, so in a process
that handled token responses those files can end up holding them. `M_PERTURB` makes `malloc`
fill each block it hands out (perturb byte XOR 0xFF: zeros) and `free` overwrite each block it
takes back (0xFF). Measured on the demo: without it the unused part of `length.bin` held heap
residue in every run; with it, zeros in every run.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading

log = logging.getLogger(__name__)

M_PERTURB = -6  # glibc's mallopt parameter (malloc.h)
PERTURB_BYTE = 0xFF  # freed memory becomes 0xFF, handed-out memory 0x00

_lock = threading.Lock()
_applied: bool | None = None


def scrub_heap_memory() -> bool:
    """Turn glibc's perturbation on for this process (once); whether it is on.

    Elsewhere (macOS, musl) it is a no-op that returns False: their allocators differ, and
    the document-store token tests say whether a platform needs something of its own.
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = False
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                try:
                    _applied = bool(ctypes.CDLL(None).mallopt(M_PERTURB, PERTURB_BYTE))
                except (OSError, AttributeError):
                    log.debug("mallopt(M_PERTURB) is unavailable", exc_info=True)
        return _applied
