"""Bearer authentication: static tokens, HS256 JWTs, or the host's own `authenticate` callable.

There is no open mode: a request without a valid token is 401, whatever the configuration.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chatstream.errors import ConfigError, UnauthorizedError
from chatstream.models import Principal

if TYPE_CHECKING:
    from litestar import Request

    from chatstream.settings import Settings

__all__ = ["Authenticate", "TokenAuthenticator"]

Authenticate = Callable[["Request[Any, Any, Any]"], Awaitable[Principal | None]]
"""A host-supplied authenticator: the principal, or None for 401."""


class TokenAuthenticator:
    """Resolves `Authorization: Bearer <token>` from configured static tokens and/or JWTs."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [
            (t.token.get().encode(), Principal(user_id=t.user_id, tier=t.tier)) for t in settings.auth_tokens
        ]
        self._jwt_secret = settings.jwt_secret.get() if settings.jwt_secret else None
        self._jwt_required = ["sub", "exp"] if settings.jwt_require_exp else ["sub"]
        self._jwt: Any = None
        if self._jwt_secret is not None:
            try:
                import jwt
            except ImportError as exc:
                raise ConfigError("CHAT_JWT_SECRET needs PyJWT: pip install 'chatstream[jwt]'") from exc
            self._jwt = jwt

    async def __call__(self, request: Request[Any, Any, Any]) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
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
