"""When a request's bytes reached this host: the kernel's receive timestamp (SO_TIMESTAMP).

Load shedding (receiver/standing_queue.py) judges a callback by how long it waited before a thread
took it. The worker's read stage notes when it found the request whole, but the read stage runs
under the same GIL as the request threads: when they are busy, the event loop reads late and a
request waits in its socket's buffer first, where that note cannot see it. Seen at 1.25x the
production config's saturation with another process on half a core (benchmarks/RESULTS.md, issue
16 step 10): the thread pool's queue stayed short, too few callbacks were shed, and replies went
over 2 s. The kernel stamps each segment as it arrives; `recv_stamped` reads that stamp with the
bytes, so the wait counts from when the request was in the host, not from when the loop got to it.

Linux only (elsewhere, and where the option is refused, there is no stamp and the read stage's own
note is used). The stamp is CLOCK_REALTIME: a step of the system clock can make one request look
older or newer than it is; the worker bounds what it believes (receiver/worker.py).
"""

from __future__ import annotations

import socket
import struct
import sys

# SO_TIMESTAMP (the old, timeval form) is 29 in asm-generic/socket.h, which x86-64 and arm64 use.
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29 if sys.platform == "linux" else None)
_TIMEVAL = struct.Struct("@ll")  # struct timeval: seconds and microseconds, two C longs
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMEVAL.size) if hasattr(socket, "CMSG_SPACE") else 0


def stamp_arrivals(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what `sock` receives; False where it cannot."""
    if SO_TIMESTAMP is None or not _ANCILLARY_BYTES:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    except OSError:
        return False
    return True


def recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, float | None]:
    """recv() with the arrival time (epoch seconds) of the last segment read; None: no stamp came.
    Raises what recv() raises."""
    data, ancillary, _, _ = sock.recvmsg(size, _ANCILLARY_BYTES)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(payload) >= _TIMEVAL.size:
            seconds, microseconds = _TIMEVAL.unpack_from(payload)
            return data, seconds + microseconds / 1e6
    return data, None
