"""CRC-32 of shard chunks: ISA-L's ``crc32_gzip_refl`` when installed, else ``zlib.crc32``.

Both compute the same checksum (the gzip / zlib CRC-32, reflected polynomial 0xEDB88320), so
stores written with one verify with the other. ISA-L's folding kernel runs at tens of GB/s, about
seven times zlib's, and like zlib it runs outside the GIL (a ctypes call), so shard checksums
overlap with I/O on worker threads.
"""

from __future__ import annotations

import ctypes
import zlib
from functools import cache

import numpy as np

Buffer = bytes | bytearray | memoryview | np.ndarray


@cache
def _isal_crc():  # a ctypes function, or None without ISA-L
    from redundancy.gf256.kernel import isal_library

    library = isal_library()
    if library is None or not hasattr(library, "crc32_gzip_refl"):
        return None
    function = library.crc32_gzip_refl
    function.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint64]
    function.restype = ctypes.c_uint32
    return function


def crc32(data: Buffer) -> int:
    """The zlib CRC-32 of ``data`` (a bytes-like object or a contiguous uint8 array).

    Parameters
    ----------
    data
        The bytes to check.

    Returns
    -------
    int
        The same value as ``zlib.crc32(data)``.

    Examples
    --------
    >>> crc32(b"123456789") == zlib.crc32(b"123456789") == 0xCBF43926
    True
    """
    function = _isal_crc()
    if function is None:
        return zlib.crc32(data)
    array = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    if not array.flags.c_contiguous:
        return zlib.crc32(np.ascontiguousarray(array))
    if array.size == 0:
        return 0
    return int(function(0, array.ctypes.data, array.nbytes))
