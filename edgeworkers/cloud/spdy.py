"""The SPDY/3.1 framing kubectl's port-forward speaks (moby/spdystream), server side, as pure functions of bytes.

kubectl 1.32 tunnels SPDY inside a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``): the WebSocket's binary
messages carry the SPDY connection's bytes, cut anywhere, so ``FrameReader`` parses frames from a byte stream.
Only what port-forward needs is here: SYN_STREAM (headers read), SYN_REPLY, DATA, RST_STREAM, PING, GOAWAY;
SETTINGS, WINDOW_UPDATE and HEADERS are parsed and ignored (spdystream keeps no flow-control window). Header blocks
are zlib streams with SPDY/3's dictionary, one compression context per direction for the whole connection.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
# RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
MAX_FRAME = 1 << 20  # larger than any frame kubectl writes (its copies use 32 KiB buffers); more is refused
MAX_HEADER_BLOCK = 64 * 1024  # decompressed

# SPDY/3's header compression dictionary (draft 3, section 2.6.10.1): length-prefixed words, then a tail. zlib checks
# its Adler-32, so a byte off and kubectl's first SYN_STREAM cannot be read.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer sent what is not SPDY/3: the connection ends (GOAWAY, PROTOCOL_ERROR)."""


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: dict[str, str]
    fin: bool


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int


@dataclass(frozen=True)
class Ignored:
    """SETTINGS, WINDOW_UPDATE, HEADERS (read, so the compression context stays in step), SYN_REPLY."""
    type: int


Frame = Data | SynStream | RstStream | Ping | GoAway | Ignored


def encode_headers(headers: dict[str, str]) -> bytes:
    """A header block before compression: pair count, then each name and value with a 32-bit length."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        for text in (name.lower().encode(), value.encode()):
            out.append(struct.pack(">I", len(text)) + text)
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    """A decompressed header block; a name given several values keeps the first (values are NUL-separated)."""
    try:
        (count,), offset = struct.unpack_from(">I", block), 4
        headers: dict[str, str] = {}
        for _ in range(count):
            pair = []
            for _ in range(2):
                (size,) = struct.unpack_from(">I", block, offset)
                offset += 4
                if offset + size > len(block):
                    raise ProtocolError("a header runs past its block")
                pair.append(block[offset:offset + size].decode())
                offset += size
            headers.setdefault(pair[0].lower(), pair[1].split("\0")[0])
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed header block: {exc}") from exc
    return headers


@dataclass
class FrameReader:
    """Frames from the peer's bytes, fed in pieces of any size."""

    _buffer: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            first, flags_length = struct.unpack_from(">II", self._buffer)
            flags, length = flags_length >> 24, flags_length & 0xFFFFFF
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes: more than {MAX_FRAME}")
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version}: only {VERSION} is spoken")
                frames.append(self._control(kind, flags, payload))
            else:
                frames.append(Data(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
        return frames

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        try:
            if kind == SYN_STREAM:
                (stream_id,) = struct.unpack_from(">I", payload)
                return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), bool(flags & FLAG_FIN))
            if kind in (SYN_REPLY, HEADERS):
                self._headers(payload[4:])
                return Ignored(kind)
            if kind == RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == PING:
                return Ping(struct.unpack_from(">I", payload)[0])
            if kind == GOAWAY:
                return GoAway(struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF)
        except struct.error as exc:
            raise ProtocolError(f"control frame {kind} too short") from exc
        return Ignored(kind)  # SETTINGS, WINDOW_UPDATE, and types SPDY/3 leaves to extensions

    def _headers(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._inflate.decompress(compressed, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise ProtocolError(f"header block: {exc}") from exc
        if self._inflate.unconsumed_tail:
            raise ProtocolError(f"header block larger than {MAX_HEADER_BLOCK} bytes")
        return decode_headers(block)


@dataclass
class FrameWriter:
    """Frames to the peer; header blocks share one compression context, so frames must be sent in the order made."""

    _deflate: zlib._Compress = field(
        default_factory=lambda: zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY))

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        block = self._deflate.compress(encode_headers(headers or {})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)


def data(stream_id: int, payload: bytes = b"", fin: bool = False) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a data frame holds at most {MAX_FRAME} bytes")
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload


def rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def goaway(last_good_stream_id: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_good_stream_id, status))


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload
