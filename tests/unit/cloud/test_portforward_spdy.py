"""SPDY/3.1 framing as kubectl 1.32's port-forward writes and reads it."""
import struct
import zlib

import pytest

from edgeworkers.cloud import spdy

# The first SPDY frame kubectl 1.32.4 sent for a connection (the error stream of request 0, port 80), as captured from
# its WebSocket: the zlib header names the SPDY/3 dictionary by its Adler-32 (e3c6a7c2).
KUBECTL_SYN_STREAM = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc6461c0c0c0c"
    "0590489c44c50e2663400000000ffff")


def client_syn_stream(deflate, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
    """A SYN_STREAM as spdystream's framer writes it (the client side)."""
    block = deflate.compress(spdy.encode_headers(headers)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIH", stream_id, 0, 0) + block
    return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, ((1 if fin else 0) << 24) | len(payload)) + payload


def test_kubectls_syn_stream_is_read_with_the_spdy3_dictionary() -> None:
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.FrameReader().feed(KUBECTL_SYN_STREAM) == [
        spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, fin=False)]


def test_frames_cut_anywhere_across_messages_are_reassembled() -> None:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    wire = (client_syn_stream(deflate, 1, {"streamType": "error", "port": "80", "requestID": "0"})
            + client_syn_stream(deflate, 3, {"streamType": "data", "port": "80", "requestID": "0"})
            + spdy.data(3, b"GET / HTTP/1.0\r\n\r\n") + spdy.data(3, fin=True) + spdy.ping(1)
            + spdy.rst_stream(1, spdy.CANCEL) + spdy.goaway(3))
    reader = spdy.FrameReader()
    frames = []
    for i in range(len(wire)):  # one byte per WebSocket message: the worst case
        frames += reader.feed(wire[i:i + 1])
    assert frames == [
        spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, False),
        spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}, False),
        spdy.Data(3, b"GET / HTTP/1.0\r\n\r\n", False),
        spdy.Data(3, b"", True),
        spdy.Ping(1),
        spdy.RstStream(1, spdy.CANCEL),
        spdy.GoAway(3),
    ]


def test_syn_replies_share_one_compression_context_the_client_can_follow() -> None:
    writer = spdy.FrameWriter()
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    for stream_id in (1, 3, 5):
        frame = writer.syn_reply(stream_id)
        head, kind, length = struct.unpack_from(">HHI", frame)
        assert (head, kind, length & 0xFFFFFF, length >> 24) == (0x8003, spdy.SYN_REPLY, len(frame) - 8, 0)
        (replied,) = struct.unpack_from(">I", frame, 8)
        assert replied == stream_id
        assert spdy.decode_headers(inflate.decompress(frame[12:])) == {}


def test_data_frames_carry_the_stream_and_fin() -> None:
    frame = spdy.data(7, b"abc", fin=True)
    assert frame == struct.pack(">II", 7, (1 << 24) | 3) + b"abc"
    assert spdy.FrameReader().feed(frame) == [spdy.Data(7, b"abc", True)]


def test_settings_window_updates_and_headers_are_read_and_ignored() -> None:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    block = deflate.compress(spdy.encode_headers({"x": "y"})) + deflate.flush(zlib.Z_SYNC_FLUSH)
    headers = struct.pack(">HHI", 0x8003, spdy.HEADERS, 4 + len(block)) + struct.pack(">I", 1) + block
    settings = struct.pack(">HHII", 0x8003, spdy.SETTINGS, 4, 0)
    window = struct.pack(">HHIII", 0x8003, spdy.WINDOW_UPDATE, 8, 1, 65536)
    after = client_syn_stream(deflate, 3, {"streamType": "data", "port": "80", "requestID": "1"})
    frames = spdy.FrameReader().feed(headers + settings + window + after)
    assert frames[:3] == [spdy.Ignored(spdy.HEADERS), spdy.Ignored(spdy.SETTINGS), spdy.Ignored(spdy.WINDOW_UPDATE)]
    assert frames[3] == spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "1"}, False)


@pytest.mark.parametrize(("wire", "error"), [
    (struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1", "SPDY version 2"),
    (struct.pack(">II", 1, spdy.MAX_FRAME + 1), "more than"),
    (struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, 14) + b"\0\0\0\1" + b"\0" * 6 + b"junk", "header block"),
    (struct.pack(">HHI", 0x8003, spdy.RST_STREAM, 2) + b"\0\1", "too short"),
])
def test_what_is_not_spdy3_is_a_protocol_error(wire: bytes, error: str) -> None:
    with pytest.raises(spdy.ProtocolError, match=error):
        spdy.FrameReader().feed(wire)


def test_a_header_block_too_large_is_refused() -> None:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    big = client_syn_stream(deflate, 1, {"x": "a" * (spdy.MAX_HEADER_BLOCK + 1)})
    with pytest.raises(spdy.ProtocolError, match="larger than"):
        spdy.FrameReader().feed(big)
