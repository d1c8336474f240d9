"""The project's own SIP core: plain asyncio, no Django import, so it is tested and benchmarked alone.

- ``message``: requests, responses, headers and the header values we read (Via, CSeq, URIs).
- ``parser``: the strict wire parser (only ``ParseError`` escapes) and the TCP stream framer.
- ``transaction``: RFC 3261 §17 transactions and timers.
- ``transport``: ``SipEndpoint`` (UDP socket, TCP connections, dispatch to a request handler).
- ``notify``: out-of-dialog NOTIFY fan-out, the API the Django side calls.
"""
