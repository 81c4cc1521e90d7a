"""Write posts with an OpenAI-compatible chat model (OpenAI, Ollama, vLLM) via the official SDK.

One request writes every slot of a user's day, answering in a strict JSON schema. The model can
still refuse, be cut off by the token limit, or write a tweet X would reject, so every post is
validated here; only the slots that came back unusable are asked for again, a bounded number of
times. A slot that never gets a valid post stays empty rather than receiving a broken one.

Compatible servers differ from OpenAI in two ways handled here, and what works is remembered
per base URL (and model) for the life of the process (:data:`CAPABILITIES`), so the cost of
finding out is paid once per worker, not per user:

* Structured output: llama.cpp-based servers answer 500 to ``json_schema`` or ignore it. The
  request falls back to ``json_object``, then to plain JSON asked for in the prompt; the answer
  is validated the same way in every mode (:data:`OUTPUT_MODES`).
* Temperature: reasoning models accept only the default and answer 400 ``unsupported_value``
  to any other; the request is sent again without it, and the user's creativity reaches the
  model through the prompt only.

A 429 ``insufficient_quota`` is not a rate limit: only billing fixes it, so it is an
:class:`OperatorProblem` (the operator is told once, the day's generation fails with that reason).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import openai

from app.errors import InvalidValue
from app.platforms import KNOWN_PLATFORMS
from app.providers.base import ContentBrief, DraftPost, PostSlot
from app.providers.errors import (
    GenerationError,
    PermanentError,
    ProviderError,
    TemporaryError,
)
from app.providers.openai_compat import (
    CAPABILITIES,
    OUTPUT_MODES,
    check_model_served,
    map_openai_error,
    refuses_output_mode,
    refuses_temperature,
)
from app.providers.openai_prompt import (
    build_messages,
    parse_answer,
    response_format,
    slot_key,
    temperature_for,
)

logger = logging.getLogger(__name__)

#: Requests per :meth:`OpenAIGeneration.generate`, the first included, before giving up on a slot.
DEFAULT_MAX_ATTEMPTS = 3
#: Seconds allowed for one chat completion request.
DEFAULT_TIMEOUT = 30.0



class OpenAIGeneration:
    """:class:`~app.providers.base.GenerationProvider` on the Chat Completions API."""

    name = "openai"
    offline = False

    def __init__(
        self,
        api_key: str,
        base_url: str,
        model: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise InvalidValue(
                "OpenAIGeneration needs an API key; set OPENAI_API_KEY (any value for Ollama/vLLM)"
            )
        if max_attempts < 1:
            raise InvalidValue("max_attempts must be at least 1")
        self.model = model
        self.base_url = base_url
        self.max_attempts = max_attempts
        # Retries are ours (validation-aware, bounded); the SDK's would hide 429s from the caller.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        """One validated draft per slot; unusable slots are retried, then left out.

        Raises the mapped :class:`ProviderError` if the API call itself fails before any draft
        was accepted, and :class:`GenerationError` if no attempt produced a usable post. A
        server refusing the output format or the temperature is asked again without it: such
        a request does not count as an attempt (there are at most three such changes).
        """
        pending: dict[tuple[str, str], PostSlot] = {}
        for slot in brief.slots:
            pending.setdefault((slot.platform, slot_key(slot.slot_at)), slot)
        order = list(pending)
        accepted: dict[tuple[str, str], DraftPost] = {}
        feedback: list[str] = []
        attempts = 0
        mode = CAPABILITIES.output_mode(self.base_url) or OUTPUT_MODES[0]
        while pending and attempts < self.max_attempts:
            attempts += 1
            slots = list(pending.values())
            try:
                completion, mode = self._complete(brief, slots, feedback, mode)
            except ProviderError as error:
                if not accepted:
                    raise
                logger.warning("generation stopped after a failed retry: %s", error)
                break
            outcome = parse_answer(completion, pending)
            if outcome.accepted:
                CAPABILITIES.learned_output_mode(self.base_url, mode)
            elif outcome.unparsable and mode != OUTPUT_MODES[-1]:
                # A server that ignores response_format answers prose: ask differently next time.
                mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]
                logger.info("%s ignored the output format; trying %s", self.base_url, mode)
            accepted.update(outcome.accepted)
            for key in outcome.accepted:
                pending.pop(key)
            feedback = outcome.problems
            if pending:
                logger.info(
                    "attempt %d left %d slot(s) unusable: %s", attempts, len(pending), feedback
                )
        if not accepted:
            raise GenerationError(
                f"no usable post after {attempts} attempt(s): " + "; ".join(feedback)
            )
        return [accepted[key] for key in order if key in accepted]

    def _complete(self, brief: ContentBrief, slots: list[PostSlot], feedback: list[str],
                  mode: str) -> tuple[Any, str]:
        """One chat completion, adapting to the server; returns it and the output mode used.

        A refused output format moves to the next of :data:`OUTPUT_MODES`, a refused
        temperature is dropped for this model; both are remembered in :data:`CAPABILITIES`.
        """
        for _ in range(len(OUTPUT_MODES) + 1):
            temperature = CAPABILITIES.accepts_temperature(self.base_url, self.model)
            kwargs: dict[str, Any] = {
                "model": self.model,
                "messages": build_messages(brief, slots, feedback, output_mode=mode),
            }
            if mode == "json_schema":
                kwargs["response_format"] = response_format(slots, brief)
            elif mode == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            if temperature:
                kwargs["temperature"] = temperature_for(brief.creativity_level)
            try:
                return self._client.chat.completions.create(**kwargs), mode
            except openai.OpenAIError as exc:
                if temperature and refuses_temperature(exc):
                    logger.info("%s model %s refuses a temperature; omitting it", self.base_url, self.model)
                    CAPABILITIES.refuses_temperature(self.base_url, self.model)
                    continue
                if mode != OUTPUT_MODES[-1] and refuses_output_mode(exc, mode):
                    mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]
                    logger.info("%s refuses the output format; trying %s", self.base_url, mode)
                    continue
                raise map_openai_error(exc) from exc
            except ValueError as exc:
                # The SDK lets a body that is not JSON escape as a bare JSONDecodeError.
                raise TemporaryError(f"OpenAI returned a malformed response body: {exc}") from exc
        raise PermanentError(f"{self.base_url} refused every output format and temperature setting")

    def probe_output_mode(self) -> str:
        """Which of :data:`OUTPUT_MODES` the server honours, found with a one-line request.

        For ``autopilot doctor``; the answer is remembered like a generation's.
        """
        slot = PostSlot(KNOWN_PLATFORMS[0], datetime.now(UTC).replace(microsecond=0))
        brief = ContentBrief(slots=[slot], brand_voice="plain", creativity_level=0.0,
                             topics=["a connectivity check"], research=[])
        mode = OUTPUT_MODES[0]
        while True:
            completion, mode = self._complete(brief, [slot], ["reply with a one-word post"], mode)
            outcome = parse_answer(completion, {(slot.platform, slot_key(slot.slot_at)): slot})
            if not outcome.unparsable or mode == OUTPUT_MODES[-1]:
                CAPABILITIES.learned_output_mode(self.base_url, mode)
                return mode
            mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]

    def check(self) -> str:
        """Confirm the key works, the model is served and which output mode the server
        supports, for ``autopilot doctor``."""
        found = self._check_model()
        mode = self.probe_output_mode()
        temperature = ("" if CAPABILITIES.accepts_temperature(self.base_url, self.model)
                       else "; the model refuses a temperature (creativity goes through the prompt)")
        return f"{found}; output mode {mode}{temperature}"

    def _check_model(self) -> str:
        return f"openai ok: {check_model_served(self._client, self.model, self.base_url)}"

