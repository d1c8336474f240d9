"""The SDP of a call without media: every audio stream answered inactive, in the offer's order."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sip.sdp import inactive_answer

from .corpus import INVITE_WITH_SDP_BODY


def lines(sdp: bytes) -> list[str]:
    return sdp.decode().split("\r\n")


def test_an_audio_offer_is_answered_inactive_with_its_first_codec():
    answer = lines(inactive_answer(INVITE_WITH_SDP_BODY.encode(), host="198.51.100.7"))
    assert answer[0] == "v=0"
    assert "c=IN IP4 198.51.100.7" in answer
    assert [line for line in answer if line.startswith("m=")] == ["m=audio 9 RTP/AVP 0"]
    assert "a=inactive" in answer


def test_each_offered_stream_gets_an_answer_and_video_is_refused():
    offer = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/SAVP 96 0\r\na=rtpmap:96 opus/48000/2\r\n"
        b"m=video 4002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
    )
    answer = lines(inactive_answer(offer, host="h"))
    assert [line for line in answer if line.startswith("m=")] == ["m=audio 9 RTP/SAVP 96", "m=video 0 RTP/AVP 97"]
    assert "a=rtpmap:96 opus/48000/2" in answer


def test_without_an_offer_we_offer_inactive_audio():
    answer = lines(inactive_answer(b"", host="h"))
    assert "m=audio 9 RTP/AVP 0 8" in answer
    assert "a=inactive" in answer


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_offer_gets_an_answer_with_inactive_audio_or_refused_streams(offer):
    answer = lines(inactive_answer(offer, host="h"))
    media = [line for line in answer if line.startswith("m=")]
    assert media
    assert all(line.startswith("m=audio 9 ") or line.split()[1] == "0" for line in media)
