"""Response headers every page of the admin and of the users' portal carries, and the CSP nonce.

One implementation for both apps (each calls :func:`init_app`), so a header tightened for one
is tightened for the other. Flask-Admin marks each ``<script>`` and stylesheet with
``admin_csp_nonce_attribute`` when the Admin is built with a ``csp_nonce_generator``;
:func:`csp_nonce` is that generator (one nonce per request), so the policy can allow this
page's scripts and nothing injected into it. The portal's templates use the same nonce.
"""

from __future__ import annotations

import secrets

from flask import Flask, g
from werkzeug.wrappers import Response

#: HSTS max-age sent when cookies are HTTPS-only, in seconds (one year).
DEFAULT_HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600


def csp_nonce() -> str:
    """This request's CSP nonce (created on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(nonce: str, *, inline_styles: bool = True) -> str:
    """The policy: scripts only from this site with this request's nonce, no framing."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            # Flask-Admin's widgets set style attributes (styles cannot run code); the portal
            # has none and allows none.
            "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def init_app(app: Flask, *, inline_styles: bool = True) -> None:
    """Add the headers to every response; HSTS only when the session cookie is HTTPS-only."""

    def _add_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy",
                           content_security_policy(csp_nonce(), inline_styles=inline_styles))
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # The portal's sign-in link is in its URL: never send it to another site.
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response

    app.after_request(_add_headers)
    if app.config.get("SESSION_COOKIE_SECURE"):

        def _hsts(response: Response) -> Response:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={DEFAULT_HSTS_MAX_AGE_SECONDS}")
            return response

        app.after_request(_hsts)
