"""The `session` cookie: an HS256 JWT `{id, email, iat, exp}` signed with `jwt_secret`,
verified by the rules of components/common/src/session.rs with the standard library only.
A missing, malformed, expired, tampered or non-HS256 (e.g. `alg: none`) token means "not
signed in" (None)."""

import base64
import hashlib
import hmac
import json
import time

COOKIE_NAME = "session"


def b64url(text):
    if not text.isascii() or "=" in text:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_u64(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def verify_token(secret, token, now):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url(parts[0]))
        claims = json.loads(b64url(parts[1]))
        signature = b64url(parts[2])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return None
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return None
    if not isinstance(claims, dict):
        return None
    if not (isinstance(claims.get("id"), str) and isinstance(claims.get("email"), str)):
        return None
    if not (is_u64(claims.get("iat")) and is_u64(claims.get("exp"))):
        return None
    return claims if now < claims["exp"] else None


def session_cookies(header):
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name.strip() == COOKIE_NAME:
            yield value.strip().strip('"')


def current_user(cookie_header, secret, now=None):
    """The claims of the first valid `session` cookie, or None."""
    if not cookie_header:
        return None
    now = int(time.time()) if now is None else now
    for token in session_cookies(cookie_header):
        claims = verify_token(secret, token, now)
        if claims is not None:
            return claims
    return None
