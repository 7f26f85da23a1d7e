"""Where one HTTP/1.1 request ends in the bytes read so far: sans-I/O, for the worker's read stage.

imhook's worker (receiver/worker.py) reads every request in its event loop, without a thread, and
hands it to gunicorn's parser and a thread only once it is complete: a client that sends nothing or
a byte a second then costs a buffer, never a thread. This module decides, from the bytes alone,
whether the request is complete, still needs bytes, or must be refused (over a size limit, or a
chunked body whose framing is broken). Everything else about the request (methods, header syntax,
a Content-Length that is not a number, Transfer-Encoding other than chunked) is left to gunicorn's
parser, which sees exactly the bytes framed here and answers through the worker's `handle_error`.

The framing follows RFC 9112 §6: Transfer-Encoding chunked, else Content-Length, else no body.
"""

from __future__ import annotations

from dataclasses import dataclass

CRLF = b"\r\n"
# A chunk-size line ("1a2b;ext=1") longer than this is refused: sizes of a body up to any sane
# max_body_bytes fit in 16 hex digits, and extensions carry nothing imhook reads.
MAX_CHUNK_LINE_BYTES = 1024
# A chunked body may take at most this many bytes on the wire per byte of payload allowed (plus one
# chunk line): a body of one-byte chunks would otherwise buffer six bytes per byte of the limit.
MAX_CHUNKED_WIRE_FACTOR = 2


@dataclass(frozen=True)
class Limits:
    """What one request may weigh. `head`: request line plus headers, both CRLFs included."""

    request_line: int
    head: int
    body: int


@dataclass(frozen=True)
class Refusal:
    """Answer this status and close: the rest of the request is never read."""

    status: int
    message: str


class Framer:
    """Collects a connection's bytes and says when they hold one whole request.

    `feed(data)` returns None while more bytes are needed, the length of the first complete
    request, or a Refusal. `take(n)` removes those n bytes (pipelined bytes after them stay for the
    next request). The scan resumes where it stopped, so a body trickled a byte at a time costs
    linear work, not quadratic.
    """

    def __init__(self, limits: Limits, data: bytes = b""):
        self.limits = limits
        self.buffer = bytearray(data)
        self._reset()

    def _reset(self) -> None:
        self._head_end = -1  # index just past the head's empty line
        self._line_end = -1  # index of the CR that ends the request line
        self.target = b""  # the request target, once the request line is in (an error's shape follows it)
        self._lf_scan = 0  # where the head scan resumes
        self._scan = 0  # where the chunk scan resumes
        self._body_total = 0  # chunked: payload bytes so far
        self._need = -1  # Content-Length framing: total bytes of the request
        self._chunked = False
        self._in_trailers = False
        self.expects_continue = False

    @property
    def started(self) -> bool:
        return bool(self.buffer)

    @property
    def head_complete(self) -> bool:
        return self._head_end >= 0

    def feed(self, data: bytes = b"") -> int | Refusal | None:
        if data:
            self.buffer += data
        if self._head_end < 0:
            verdict = self._frame_head()
            if verdict is not None or self._head_end < 0:
                return verdict
        if self._chunked:
            return self._frame_chunks()
        if len(self.buffer) >= self._need:
            return self._need
        return None

    def take(self, length: int) -> bytes:
        """The first `length` bytes (one request); the framer then waits for the next request."""
        request = bytes(self.buffer[:length])
        del self.buffer[:length]
        self._reset()
        return request

    # --- the head --------------------------------------------------------------------------------

    def _frame_head(self) -> int | Refusal | None:
        """One pass over each new byte (a head trickled a byte at a time costs linear work): every
        LF must end a CRLF; the first ends the request line, the first CRLFCRLF the head."""
        buffer, limits = self.buffer, self.limits
        start = 2 if buffer[:2] == CRLF else 0  # RFC 9112 §2.2: one empty line before the request
        lf = buffer.find(b"\n", self._lf_scan)
        while lf >= 0:
            if lf == 0 or buffer[lf - 1] != 13:
                # A bare LF: the head will never end the way RFC 9112 §2.2 says; gunicorn's parser
                # refuses it (400) at once rather than after the read deadline.
                self._head_end = len(buffer)
                return self._head_end
            if self._line_end < 0 and lf - 1 >= start:
                self._line_end = lf - 1
                parts = bytes(buffer[start:self._line_end]).split(b" ", 2)
                self.target = parts[1] if len(parts) > 1 else b""
                if self._line_end - start > limits.request_line:
                    return Refusal(414, f"request line longer than {limits.request_line} bytes")
            elif self._line_end >= 0 and lf >= self._line_end + 3 and buffer[lf - 3:lf - 1] == CRLF:
                end = lf + 1
                if end > limits.head:
                    return Refusal(431, f"request headers longer than {limits.head} bytes in all")
                self._head_end = end
                return self._choose_body(bytes(buffer[self._line_end + 2:end - 4]))
            lf = buffer.find(b"\n", lf + 1)
        self._lf_scan = len(buffer)
        if self._line_end < 0 and len(buffer) - start > limits.request_line + 1:
            return Refusal(414, f"request line longer than {limits.request_line} bytes")
        if len(buffer) > limits.head:
            return Refusal(431, f"request headers longer than {limits.head} bytes in all")
        return None

    def _choose_body(self, header_block: bytes) -> int | Refusal | None:
        lengths, codings = [], []
        for line in header_block.split(CRLF):
            name, colon, value = line.partition(b":")
            if not colon:
                continue  # gunicorn's parser refuses the line; no body is read for it
            name = name.strip().lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings.append(value.strip().lower())
            elif name == b"expect":
                self.expects_continue = value.strip().lower() == b"100-continue"
        if codings:
            parts = [part.strip() for part in codings[0].split(b",")]
            if lengths or len(codings) > 1 or parts[-1] != b"chunked" or parts.count(b"chunked") > 1:
                return self._head_end  # ambiguous framing: gunicorn's parser refuses it (400)
            self._chunked = True
            self._scan = self._head_end
            return None
        if len(lengths) != 1 or not lengths[0].isdigit():
            self._need = self._head_end  # none: no body; several or not a number: gunicorn refuses it
            return None
        if len(lengths[0]) > 19 or int(lengths[0]) > self.limits.body:
            return Refusal(413, f"body over the limit of {self.limits.body} bytes")
        self._need = self._head_end + int(lengths[0])
        return None

    # --- a chunked body ----------------------------------------------------------------------------

    def _frame_chunks(self) -> int | Refusal | None:
        buffer, limits = self.buffer, self.limits
        while True:
            if self._in_trailers:
                return self._frame_trailers()
            line_end = buffer.find(CRLF, self._scan, self._scan + MAX_CHUNK_LINE_BYTES + 2)
            if line_end < 0:
                if len(buffer) - self._scan > MAX_CHUNK_LINE_BYTES + 1:
                    return Refusal(400, "malformed chunked body: chunk-size line too long")
                return None
            size_text = bytes(buffer[self._scan:line_end]).split(b";", 1)[0].strip(b" \t")
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                return Refusal(400, "malformed chunked body: bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                self._scan = line_end + 2
                self._in_trailers = True
                continue
            if self._body_total + size > limits.body:
                return Refusal(413, f"body over the limit of {limits.body} bytes")
            data_end = line_end + 2 + size
            if data_end - self._head_end > MAX_CHUNKED_WIRE_FACTOR * limits.body + MAX_CHUNK_LINE_BYTES:
                return Refusal(413, f"chunked body over {MAX_CHUNKED_WIRE_FACTOR} x {limits.body} bytes on the wire")
            if len(buffer) < data_end + 2:
                return None
            if buffer[data_end:data_end + 2] != CRLF:
                return Refusal(400, "malformed chunked body: chunk not followed by CRLF")
            self._body_total += size
            self._scan = data_end + 2

    def _frame_trailers(self) -> int | Refusal | None:
        buffer, limits = self.buffer, self.limits
        if buffer[self._scan:self._scan + 2] == CRLF:
            return self._scan + 2
        end = buffer.find(b"\r\n\r\n", self._scan)
        if end < 0:
            if len(buffer) - self._scan > limits.head:
                return Refusal(431, f"trailers longer than {limits.head} bytes")
            return None
        if end + 4 - self._scan > limits.head:
            return Refusal(431, f"trailers longer than {limits.head} bytes")
        return end + 4
