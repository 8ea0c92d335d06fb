"""Random secrets shown once and stored as sha256 digests.

Worker secrets (``bfw_``) and API tokens (``bf_``) carry 256 bits of randomness, so a
plain sha256 is a safe stored form (no slow KDF needed) and keeps each request cheap.
"""

import hashlib
import hmac
import secrets

WORKER_SECRET_PREFIX = "bfw_"  # noqa: S105 - a prefix, not a secret
API_TOKEN_PREFIX = "bf_"  # noqa: S105 - a prefix, not a secret


def new_secret(prefix: str) -> tuple[str, str]:
    """Return ``(plain, digest)``: show ``plain`` once, store ``digest``."""
    plain = prefix + secrets.token_urlsafe(32)
    return plain, digest(plain)


def digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def matches(plain: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(plain), stored_digest)
