"""Bearer authentication: static tokens, HS256 JWTs, or the host's own `authenticate` callable.

There is no open mode: a request without a valid token is 401, whatever the configuration.

With `session_cookie` set, the token may come from that cookie instead of the `Authorization` header (the
header wins when both are sent). A browser attaches cookies to requests other sites make, so a write
authenticated by the cookie must prove it comes from a page of ours (CSRF): it sends `Content-Type:
application/json` (which a cross-site form cannot send, and which makes a cross-origin `fetch` ask a CORS
preflight first) and, when `cors_origins` lists origins, an `Origin` among them. Else 403, before the handler
runs: a refused request stores nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chatstream.errors import ConfigError, ForbiddenError, UnauthorizedError
from chatstream.models import Principal

if TYPE_CHECKING:
    from litestar import Request

    from chatstream.settings import Settings

__all__ = ["Authenticate", "BotCheck", "TokenAuthenticator", "check_cookie_write"]

Authenticate = Callable[["Request[Any, Any, Any]"], Awaitable[Principal | None]]
"""A host-supplied authenticator: the principal, or None for 401."""

BotCheck = Callable[["Request[Any, Any, Any]"], "bool | Awaitable[bool]"]
"""A host-supplied bot check (seed 002): True refuses a request that would start a run (401 "bot detected")."""

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_cookie_write(request: Request[Any, Any, Any], origins: tuple[str, ...]) -> None:
    """Refuse (403) a cookie-authenticated write that may come from another site (see the module docstring).
    `origins` is `cors_origins`: with `*`, or empty, the Origin is not checked (`*` never allows credentials,
    so no browser sends a cross-origin credentialed write past its preflight)."""
    if request.method not in WRITE_METHODS:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ForbiddenError(
            "a request authenticated by the session cookie must send Content-Type: application/json", code="csrf"
        )
    if origins and origins != ("*",):
        origin = request.headers.get("origin")
        if origin is None or origin.rstrip("/") not in {o.rstrip("/") for o in origins}:
            raise ForbiddenError(
                "a request authenticated by the session cookie must come from an allowed Origin", code="csrf"
            )


class TokenAuthenticator:
    """Resolves `Authorization: Bearer <token>` from configured static tokens and/or JWTs."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [
            (t.token.get().encode(), Principal(user_id=t.user_id, tier=t.tier)) for t in settings.auth_tokens
        ]
        self._jwt_secret = settings.jwt_secret.get() if settings.jwt_secret else None
        self._jwt_required = ["sub", "exp"] if settings.jwt_require_exp else ["sub"]
        self._cookie = settings.session_cookie
        self._origins = settings.cors_origins
        self._jwt: Any = None
        if self._jwt_secret is not None:
            try:
                import jwt
            except ImportError as exc:
                raise ConfigError("CHAT_JWT_SECRET needs PyJWT: pip install 'chatstream[jwt]'") from exc
            self._jwt = jwt

    async def __call__(self, request: Request[Any, Any, Any]) -> Principal | None:
        header = request.headers.get("authorization")
        if header is None and self._cookie is not None:
            # The header wins: a cookie is looked at only when no Authorization header is sent at all.
            cookie = request.cookies.get(self._cookie, "").strip()
            principal = self.resolve(cookie) if cookie else None
            if principal is not None:
                check_cookie_write(request, self._origins)
            return principal
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.resolve(token.strip())

    def resolve(self, token: str) -> Principal | None:
        raw = token.encode()
        found = None
        for candidate, principal in self._tokens:
            # Compare against every token in constant time, so timing says nothing about which matched.
            if hmac.compare_digest(candidate, raw):
                found = principal
        if found is not None or self._jwt_secret is None:
            return found
        jwt = self._jwt
        try:
            # PyJWT checks `exp` (and `nbf`, `iat`) whenever present; `require` makes `exp` mandatory too.
            claims = jwt.decode(token, self._jwt_secret, algorithms=["HS256"], options={"require": self._jwt_required})
        except jwt.PyJWTError:
            return None
        sub, tier = claims["sub"], claims.get("tier", "free")
        # An empty subject would make every such token the same, nameless user.
        if not isinstance(sub, str) or not sub.strip() or not isinstance(tier, str):
            return None
        return Principal(user_id=sub, tier=tier)


async def require_principal(authenticate: Authenticate, request: Request[Any, Any, Any]) -> Principal:
    principal = await authenticate(request)
    if principal is None:
        raise UnauthorizedError(invalid_token="authorization" in request.headers)
    return principal
