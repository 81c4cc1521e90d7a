"""Illustrate a post with an OpenAI-compatible image model (``OPENAI_IMAGE_MODEL``) via the SDK.

Off unless configured: generation then attaches only the user's own images. The Images API
(``POST /v1/images/generations``) answers ``{"created", "data": [{"b64_json": ...}]}``; the GPT
image models always return base64 and refuse the legacy ``response_format`` parameter, so it
is not sent. The bytes returned are not trusted: the caller puts them through the media
library's checks like any upload (:func:`app.media.library.add_image`).

A refusal by the safety system (400 ``moderation_blocked``) is a :class:`PermanentError` like
any other 4xx; the caller keeps the post without an image whatever the failure.
"""

from __future__ import annotations

import base64
import binascii
import logging

import openai

from app.errors import InvalidValue
from app.providers.errors import PermanentError, TemporaryError
from app.providers.openai_compat import check_model_served, map_openai_error

logger = logging.getLogger(__name__)

#: The size asked for: square, offered by every GPT image model and by compatible servers.
DEFAULT_IMAGE_SIZE = "1024x1024"
#: Seconds allowed for one image: image models take far longer than a chat completion (the
#: workflow also bounds a run's image calls in all).
DEFAULT_IMAGE_TIMEOUT = 90.0
#: The longest prompt the API takes (the SDK's documentation says 32,000 characters).
MAX_IMAGE_PROMPT_CHARS = 32000


class OpenAIImages:
    """Creates one image from a description; see the module docstring."""

    name = "openai-images"
    offline = False

    def __init__(self, api_key: str, base_url: str, model: str, *, size: str = DEFAULT_IMAGE_SIZE,
                 timeout: float = DEFAULT_IMAGE_TIMEOUT) -> None:
        if not api_key:
            raise InvalidValue("OpenAIImages needs an API key; set OPENAI_API_KEY")
        if not model:
            raise InvalidValue("OpenAIImages needs a model; set OPENAI_IMAGE_MODEL")
        self.model = model
        self.base_url = base_url
        self.size = size
        # One attempt: a failed illustration costs the post its image, never the post.
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def check(self) -> str:
        """Confirm the key works and the server offers the image model, for ``autopilot doctor``
        (:class:`~app.providers.errors.ModelNotServed` when it does not)."""
        return f"openai ok: image {check_model_served(self._client, self.model, self.base_url)}"

    def generate(self, description: str) -> bytes:
        """The image's bytes for ``description`` (not yet validated: the library checks them).

        Raises a :class:`~app.providers.errors.ProviderError`: the mapped API error (a refusal
        is permanent), or PermanentError for an answer without base64 image data.
        """
        prompt = description.strip()[:MAX_IMAGE_PROMPT_CHARS]
        if not prompt:
            raise PermanentError("no description to draw an image from")
        try:
            answer = self._client.images.generate(model=self.model, prompt=prompt, n=1, size=self.size)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc) from exc
        except ValueError as exc:
            raise TemporaryError(f"the image API returned a malformed response body: {exc}") from exc
        encoded = answer.data[0].b64_json if answer.data else None
        if not encoded:
            raise PermanentError("the image API answered without base64 image data (data[0].b64_json)")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PermanentError(f"the image API's b64_json is not valid base64: {exc}") from exc
