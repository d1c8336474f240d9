"""The session description of a call that carries no media (RFC 4566, RFC 3264): every audio
stream answered ``a=inactive`` on the discard port, every other stream refused (port 0).

The feature-code calls of the SIP edge only need the phone to see "connected" for a moment; an
inactive stream keeps phones from complaining about a missing or one-way audio path.
"""

from __future__ import annotations

import secrets

DISCARD_PORT = 9  # RFC 3264 §5.1 / RFC 4145 convention for "no media will flow here"
_DEFAULT_AUDIO = "m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"


def inactive_answer(offer: bytes, *, host: str) -> bytes:
    """An answer to ``offer`` with every stream inactive; our own inactive offer when the INVITE
    carried none (the phone then answers in its ACK) or one we cannot read."""
    head = _session_head(host)
    streams = _answer_streams(offer)
    if not streams:
        return (head + _DEFAULT_AUDIO.format(port=DISCARD_PORT) + "a=inactive\r\n").encode()
    return (head + "".join(streams)).encode()


def _session_head(host: str) -> str:
    session = secrets.randbelow(2**31)
    return f"v=0\r\no=- {session} {session} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"


def _answer_streams(offer: bytes) -> list[str]:
    """One answer m= section per offered one, in order, as RFC 3264 §6 requires."""
    try:
        text = offer.decode("utf-8")
    except UnicodeDecodeError:
        return []
    streams: list[str] = []
    rtpmaps: dict[str, str] = {}
    media: list[str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            if media is not None:
                streams.append(_answer_one(media, rtpmaps))
            media, rtpmaps = line[2:].split(), {}
        elif line.startswith("a=rtpmap:") and media is not None:
            payload, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            rtpmaps[payload] = encoding.strip()
    if media is not None:
        streams.append(_answer_one(media, rtpmaps))
    return streams if all(streams) else []  # an m= line we cannot read: offer our own instead


def _answer_one(media: list[str], rtpmaps: dict[str, str]) -> str:
    if len(media) < 4 or not media[1].split("/")[0].isdigit():
        return ""
    kind, _, proto, formats = media[0], media[1], media[2], media[3:]
    first = formats[0]
    if kind != "audio" or not proto.startswith("RTP/"):
        return f"m={kind} 0 {proto} {first}\r\n"  # refused
    rtpmap = f"a=rtpmap:{first} {rtpmaps[first]}\r\n" if first in rtpmaps else ""
    return f"m=audio {DISCARD_PORT} {proto} {first}\r\n{rtpmap}a=inactive\r\n"
