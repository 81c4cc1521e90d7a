"""The authorisation-server half of the X and LinkedIn fakes: a consent page, codes, PKCE.

Both platforms run RFC 6749's authorisation code grant; what differs (paths, button labels, the
error a Cancel sends back, the code's lifetime, whether PKCE is required, how the client
authenticates at the token endpoint) is configured by :class:`tests.fakes.x.FakeX` and
:class:`tests.fakes.linkedin.FakeLinkedIn`, which also issue the tokens. What is enforced, as the
platforms' docs say (sources in tests/fixtures/wire/README.md):

- the consent request names the registered client and one of its registered redirect URIs
  (otherwise an error page and no redirect, as RFC 6749 4.1.2.1 requires), known scopes, and,
  where PKCE is required, an S256 or plain ``code_challenge``;
- the page has real buttons: Authorize redirects back with ``code`` and ``state``, Cancel with the
  platform's error and ``state``;
- a code is redeemed once, within its lifetime (the fake's own clock: tests move it), by the
  client it was issued to, with the same redirect URI, and with the verifier whose S256 digest
  is the challenge.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.fakes.platform import Recorded, Response


@dataclass
class Consent:
    """One authorisation request, as the consent page received it."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass
class IssuedCode:
    consent: Consent
    issued_at: float
    redeemed: bool = False
    #: The access tokens issued for it, revoked if someone tries to redeem it again (RFC 6749 4.1.2).
    tokens: list[str] = field(default_factory=list)


class CodeRefused(Exception):
    """A token request the authorisation server refuses; ``error`` and ``description`` go back."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


def s256(verifier: str) -> str:
    """RFC 7636's S256 challenge of a code verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def redirect(location: str) -> Response:
    return 302, {"Location": location}, b""


def html_page(status: int, body: str) -> Response:
    return status, {"Content-Type": "text/html; charset=utf-8"}, body.encode()


class ConsentServer:
    """Consent pages and authorisation codes for one fake platform."""

    def __init__(
        self,
        *,
        name: str,
        client_id: str,
        scopes: frozenset[str],
        decide_path: str,
        denied: dict[str, str],
        code_lifetime_seconds: float,
        pkce_required: bool,
        accept_label: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.client_id = client_id
        self.scopes = scopes
        self.decide_path = decide_path
        self.denied = denied
        self.code_lifetime_seconds = code_lifetime_seconds
        self.pkce_required = pkce_required
        self.accept_label = accept_label
        self.clock = clock
        #: The redirect URIs registered for the app (the developer portal's list).
        self.redirect_uris: set[str] = set()
        #: Who the consent is given as (the fake's signed-in member), shown on the page.
        self.account_label = ""
        self.consents: list[Consent] = []
        self._pending: dict[str, Consent] = {}
        self.codes: dict[str, IssuedCode] = {}

    def consent_page(self, request: Recorded) -> Response:
        """GET the authorisation endpoint: the page with the two buttons, or an error page."""
        query = {k: v[0] for k, v in request.query.items()}
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if query.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            problems.append(f"redirect_uri {redirect_uri!r} is not registered for this app")
        scope = tuple(query.get("scope", "").split())
        if not scope or not set(scope) <= self.scopes:
            problems.append(f"invalid scope {query.get('scope', '')!r}")
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
        if self.pkce_required and (not challenge or method not in {"S256", "plain"}):
            problems.append("code_challenge and code_challenge_method (S256 or plain) are required")
        if problems:
            # Never redirect to an unverified redirect_uri (RFC 6749 4.1.2.1): tell the user here.
            return html_page(400, f"<h1>{self.name}: something went wrong</h1><p>"
                             + html.escape("; ".join(problems)) + "</p>")
        consent = Consent(self.client_id, redirect_uri, scope, query.get("state"), challenge, method)
        self.consents.append(consent)
        request_id = secrets.token_urlsafe(16)
        self._pending[request_id] = consent
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in scope)
        return html_page(200, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{self.name}: authorise access</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem">
<h1>{self.name}</h1>
<p>The app <strong>{html.escape(self.client_id)}</strong> wants to access your {self.name} account
<strong>{html.escape(self.account_label)}</strong>. It will be able to:</p>
<ul>{scopes}</ul>
<form method="post" action="{self.decide_path}">
<input type="hidden" name="request_id" value="{request_id}">
<button type="submit" name="decision" value="authorize">{self.accept_label}</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</form></body></html>""")

    def decide(self, request: Recorded) -> Response:
        """POST from the consent page: back to the app with a code, or with the denial."""
        form = request.form
        consent = self._pending.pop(form.get("request_id", ""), None)
        if consent is None:
            return html_page(400, f"<h1>{self.name}</h1><p>This authorisation request expired.</p>")
        params: dict[str, str] = {}
        if form.get("decision") == "authorize":
            code = secrets.token_urlsafe(24)
            self.codes[code] = IssuedCode(consent, self.clock())
            params["code"] = code
        else:
            params.update(self.denied)
        if consent.state is not None:
            params["state"] = consent.state
        return redirect(f"{consent.redirect_uri}?{urlencode(params)}")

    def redeem(self, form: dict[str, str], *, client_id: str) -> IssuedCode:
        """The code of a token request, checked and used up; :class:`CodeRefused` otherwise."""
        issued = self.codes.get(form.get("code", ""))
        if issued is None:
            raise CodeRefused("invalid_grant", "Value passed for the authorization code was invalid.")
        if issued.redeemed:
            raise CodeRefused("invalid_grant", "Authorization code was already redeemed.")
        if self.clock() - issued.issued_at > self.code_lifetime_seconds:
            raise CodeRefused("invalid_grant", "Authorization code expired.")
        consent = issued.consent
        if client_id != consent.client_id:
            raise CodeRefused("invalid_grant", "Authorization code was issued to another client.")
        if form.get("redirect_uri") != consent.redirect_uri:
            raise CodeRefused("invalid_grant", "redirect_uri does not match the authorization request.")
        if consent.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise CodeRefused("invalid_request", "Missing required parameter [code_verifier].")
            expected = s256(verifier) if consent.code_challenge_method == "S256" else verifier
            if not secrets.compare_digest(expected, consent.code_challenge):
                raise CodeRefused("invalid_grant", "Value passed for the code verifier was invalid.")
        issued.redeemed = True
        return issued

    def is_redeemed_again(self, form: dict[str, str]) -> IssuedCode | None:
        """The already-redeemed code a token request repeats, if it does (to revoke its tokens)."""
        issued = self.codes.get(form.get("code", ""))
        return issued if issued is not None and issued.redeemed else None


def click_through(consent_url: str, decision: str = "authorize") -> dict[str, str]:
    """What a user's browser does on a fake's consent page: open it, press a button, and return
    the query the platform redirects back with (``code``/``error`` and ``state``)."""
    page = httpx.get(consent_url)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert action and request_id, page.text
    base = "{0.scheme}://{0.netloc}".format(urlsplit(consent_url))
    answer = httpx.post(base + action.group(1), data={"request_id": request_id.group(1), "decision": decision})
    assert answer.status_code == 302, answer.text
    return dict(parse_qsl(urlsplit(answer.headers["location"]).query))
