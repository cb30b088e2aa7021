"""Keep freed image buffers in a process that verifies many files, instead of handing them back.

Every file allocates and frees page-sized buffers (pdfium's bitmap, Pillow's image, zxing-cpp's
working copies). By default glibc serves each of those with a fresh ``mmap`` (or trims the heap
after it is freed), and the next file faults every page in again: measured, a third of a verify
worker's time went to the kernel. Raising glibc's thresholds makes the buffers come from the heap
and stay there for the next file (bench/alloc.py, docs/performance.md).

Bounded: buffers over :data:`MMAP_THRESHOLD` are still mapped and unmapped each time, and free
memory over :data:`TRIM_THRESHOLD` at the top of the heap is still returned to the system.
Only on glibc; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1
"""glibc's ``mallopt`` parameter numbers (malloc.h)."""
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 * 1024 * 1024
"""Allocations below this come from the heap (a 300 dpi A4 page in RGBA is 35 MB)."""
TRIM_THRESHOLD = 256 * 1024 * 1024
"""Free memory kept at the top of the heap before glibc gives it back."""


def reuse_freed_memory() -> bool:
    """Tune this process's allocator for verifying many files; True when it was changed."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["reuse_freed_memory"]
