"""Provider selection by configuration: a real client where credentials exist, offline otherwise.

Each provider is chosen on its own, so a deployment with an OpenAI key but no Serper key
writes with OpenAI from offline research.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.platforms import PLATFORMS
from app.providers.base import GenerationProvider, ImageProvider, Publisher, ResearchProvider


@dataclass
class Providers:
    research: ResearchProvider
    generation: GenerationProvider
    #: Publisher per platform key (see app.platforms).
    publishers: dict[str, Publisher]
    #: Illustrates posts without a library image (``OPENAI_IMAGE_MODEL``); None: off.
    images: ImageProvider | None = None

    def publisher(self, platform: str) -> Publisher:
        return self.publishers[platform]

    def describe(self) -> dict[str, str]:
        """Provider name per role, with "(offline)" where simulated: shown by the demo and doctor."""
        roles: dict[str, object] = {"research": self.research, "generation": self.generation,
                                    **{f"publish:{p}": pub for p, pub in self.publishers.items()}}
        return {role: f"{p.name}{' (offline, simulated)' if p.offline else ''}"  # type: ignore[attr-defined]
                for role, p in roles.items()}


def build_providers(settings: Settings, session_factory: sessionmaker[Session]) -> Providers:
    """The providers this configuration selects."""
    from app.providers.offline import OfflineResearch, TemplateGeneration
    from app.providers.sandbox import SandboxPublisher

    timeout = float(settings.provider_timeout_seconds)
    # A connect timeout means nothing was sent: always safe to retry, so keep it short.
    http_timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    research: ResearchProvider
    if settings.serper_api_key:
        from app.providers.research_cache import DbResearchCache
        from app.providers.serper import SerperResearch

        research = SerperResearch(settings.serper_api_key, settings.serper_base_url,
                                  DbResearchCache(session_factory), timeout=timeout)
    else:
        research = OfflineResearch()

    generation: GenerationProvider
    if settings.openai_api_key:
        from app.providers.openai_generation import OpenAIGeneration

        generation = OpenAIGeneration(settings.openai_api_key, settings.openai_base_url, settings.openai_model,
                                      timeout=timeout)
    else:
        generation = TemplateGeneration()

    images: ImageProvider | None = None
    if settings.openai_api_key and settings.openai_image_model:
        from app.providers.openai_images import OpenAIImages

        images = OpenAIImages(settings.openai_api_key, settings.openai_base_url, settings.openai_image_model)

    # Each platform's own factory (named in its registry entry) builds its real publisher from
    # Settings, or returns None without credentials: the sandbox stands in then.
    publishers: dict[str, Publisher] = {}
    for platform in PLATFORMS.values():
        module, name = platform.publisher_factory.split(":")
        real = getattr(importlib.import_module(module), name)(settings, http_timeout)
        publishers[platform.key] = real if real is not None else SandboxPublisher(platform.key)
    return Providers(research=research, generation=generation, publishers=publishers, images=images)
