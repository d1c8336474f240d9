"""The project's own SIP core: plain asyncio, no Django import, so it is tested and benchmarked alone.

- ``message``: requests, responses, headers and the header values we read (Via, CSeq, URIs).
- ``parser``: the strict wire parser (only ``ParseError`` escapes) and the TCP stream framer.
- ``transaction``: RFC 3261 §17 transactions and timers (non-INVITE client and server, INVITE server).
- ``dialog``: dialogs we answer as UAS: the 2xx until its ACK, then the BYE (``ServerCall``).
- ``transport``: ``SipEndpoint`` (UDP socket, TCP connections, dispatch to a request handler,
  ``answer`` for INVITEs).
- ``notify``: out-of-dialog NOTIFY fan-out, the API the Django side calls.
- ``pager``: pager-mode MESSAGE (RFC 3428) with a text for the phone's screen.
"""
