"""The two keys behind verification codes, both derived (HKDF) from one secret:
settings.VERIFICATION_CODE_KEY, or SECRET_KEY when that is empty.

- Fernet encrypts the code, so a technician can read it while it is live but a database dump
  shows nothing readable.
- HMAC-SHA256 digests it, so checks and the uniqueness constraint work without the plaintext."""

import hashlib
import hmac
from base64 import urlsafe_b64encode
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_SALT = b"sip-gateway-portal verification codes"


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(secret.encode())


@lru_cache(maxsize=4)
def _keys(secret: str) -> tuple[Fernet, bytes]:
    return Fernet(urlsafe_b64encode(_derive(secret, b"encrypt"))), _derive(secret, b"digest")


def _current() -> tuple[Fernet, bytes]:
    return _keys(settings.VERIFICATION_CODE_KEY or settings.SECRET_KEY)


def code_encrypt(code: str) -> str:
    return _current()[0].encrypt(code.encode()).decode()


def code_decrypt(token: str) -> str | None:
    """The code, or None if it was encrypted under a key that has since changed (regenerate it)."""
    try:
        return _current()[0].decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def code_digest(code: str) -> bytes:
    return hmac.digest(_current()[1], code.encode(), "sha256")


@lru_cache(maxsize=4)
def _pairing_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sip-gateway-portal pairing codes", info=b"digest").derive(
        secret.encode()
    )


def pairing_code_digest(code: str) -> bytes:
    """Pairing codes are only ever matched, never shown again: the keyed digest is all that is kept.
    Keyed by settings.PAIRING_CODE_KEY, or SECRET_KEY when that is empty."""
    key = _pairing_key(settings.PAIRING_CODE_KEY or settings.SECRET_KEY)
    return hmac.new(key, code.encode(), hashlib.sha256).digest()
