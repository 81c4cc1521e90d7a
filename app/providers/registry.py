"""Provider selection by configuration: a real client where credentials exist, offline otherwise.

Each provider is chosen on its own, so a deployment with an OpenAI key but no Serper key
writes with OpenAI from offline research.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.providers.base import GenerationProvider, Publisher, ResearchProvider


@dataclass
class Providers:
    research: ResearchProvider
    generation: GenerationProvider
    #: Publisher per platform name ("twitter", "linkedin").
    publishers: dict[str, Publisher]

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

    publishers: dict[str, Publisher] = {}
    if settings.x_client_id:
        from app.providers.x import XPublisher

        publishers["twitter"] = XPublisher(settings.x_api_base_url, settings.x_client_id, settings.x_client_secret,
                                           timeout=http_timeout)
    else:
        publishers["twitter"] = SandboxPublisher("twitter")
    if settings.linkedin_client_id:
        from app.providers.linkedin import LinkedInPublisher

        publishers["linkedin"] = LinkedInPublisher(
            settings.linkedin_api_base_url, settings.linkedin_oauth_base_url, settings.linkedin_version,
            settings.linkedin_client_id, settings.linkedin_client_secret, timeout=http_timeout)
    else:
        publishers["linkedin"] = SandboxPublisher("linkedin")
    return Providers(research=research, generation=generation, publishers=publishers)
