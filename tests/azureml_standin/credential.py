"""A TokenCredential for the stand-in: hands out HS256 JWTs, talks to nobody.

azure-ai-ml decodes access tokens without verifying them: it reads ``tid`` (studio
URL) and, for user-identity jobs, checks that ``aud`` equals the AML resource id.
So the token must be a structurally valid JWT; the signature is irrelevant.
"""

from __future__ import annotations

import threading
import time
from typing import Any

TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
OBJECT_ID = "00000000-0000-4000-8000-0000000000a1"
SIGNING_KEY = "azureml-standin-signing-key-not-a-secret"


class StandinCredential:
    """Implements ``get_token`` (azure.core TokenCredential protocol).

    ``scopes_requested`` records every scope asked for, so a test can check that
    a client asked for the stand-in's audience and not management.azure.com.
    """

    def __init__(self, tenant_id: str = TENANT_ID, object_id: str = OBJECT_ID, lifetime: int = 3600) -> None:
        self.tenant_id = tenant_id
        self.object_id = object_id
        self.lifetime = lifetime
        self.scopes_requested: list[str] = []
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any):
        import jwt  # PyJWT ships with azure-ai-ml
        from azure.core.credentials import AccessToken

        with self._lock:
            self.scopes_requested.extend(scopes)
        now = int(time.time())
        scope = scopes[0] if scopes else ""
        # "https://host/.default" -> audience "https://host" (what Entra ID would put in aud)
        audience = scope[: -len("/.default")] if scope.endswith("/.default") else scope
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "tid": self.tenant_id,
            "oid": self.object_id,
            "sub": self.object_id,
            "upn": "researcher@standin.test",
            "name": "Stand-in Researcher",
            "appid": "00000000-0000-4000-8000-0000000000b2",
            "scp": "user_impersonation",
        }
        token = jwt.encode(claims, SIGNING_KEY, algorithm="HS256")
        return AccessToken(token, now + self.lifetime)

    def close(self) -> None:
        """TokenCredential protocol: nothing to release."""
