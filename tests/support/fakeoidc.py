"""A minimal OpenID Connect provider on 127.0.0.1 for sign-in tests in a real browser.

Discovery, JWKS, an authorize endpoint that signs in `provider.user` at once (no login form),
and a token endpoint that returns an RS256 id_token carrying the nonce Streamlit sent.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "lora-studio-tests"
CLIENT_SECRET = "lora-studio-tests-secret"


class FakeOidcProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.user: dict[str, Any] = {"sub": "user-1", "email": "ann@example.com", "name": "Ann"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            **self.user,
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 600,
            **({"nonce": nonce} if nonce else {}),
        }
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)

    def secrets_toml(self, app_url: str) -> str:
        return "\n".join(
            [
                "[auth]",
                f'redirect_uri = "{app_url}/oauth2callback"',
                f'cookie_secret = "{secrets.token_hex(32)}"',
                f'client_id = "{CLIENT_ID}"',
                f'client_secret = "{CLIENT_SECRET}"',
                f'server_metadata_url = "{self.metadata_url}"',
                "",
            ]
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(provider: FakeOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, payload: Any, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {name: values[0] for name, values in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(provider.metadata())
            elif url.path == "/jwks":
                self._json({"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/userinfo":
                self._json(provider.user)
            elif url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {"nonce": query.get("nonce")}
                target = f"{query['redirect_uri']}?" + urlencode(
                    {"code": code, "state": query.get("state", "")}
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            grant = provider.codes.pop(form.get("code", ""), None)
            if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET) or grant is None:
                self._json({"error": "invalid_grant"}, 400)
                return
            self._json(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 600,
                    "id_token": provider.id_token(grant["nonce"]),
                }
            )

    return Handler
