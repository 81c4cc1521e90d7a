"""Property: whatever mix of URLs, bare domains, emoji, CJK and combining marks a post holds, the
post the autopilot would send to X is within X's weighted limit, by the official rules.

The counting itself is proven equal to the official library in tests/test_x_weighted.py; this
shows the generation paths enforce the limit with that same implementation: the offline
generator's truncation, and the acceptance of a model's answer (OpenAI generation and storage).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.providers.base import PostSlot
from app.providers.openai_prompt import parse_answer, slot_key
from app.text_limits import limit_error, platform_limit, truncate_to_limit
from app.x_weighted import parse_x_text

X_MAX_WEIGHTED = platform_limit("twitter")

#: Examples per property; three properties, so about 1,200 texts a run.
EXAMPLES = 400

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_tld = st.sampled_from(["com", "xyz", "es", "jp", "shop", "py", "md", "co.jp", "io", "org", "dev",
                        "co.uk", "notatld", "c", "みんな"])
_idn = st.sampled_from(["例え", "müller", "日本語", "bücher", "xn--bcher-kva"])
_domain = st.builds(lambda sub, name, tld: f"{sub}{name}.{tld}",
                    st.sampled_from(["", "www.", "a.b.", "sub."]), _label | _idn, _tld)
_path = st.text(alphabet="abc_()/?=&#%.,-~!日本", max_size=30).map(lambda p: "/" + p)
_url = st.builds(lambda scheme, domain, path: f"{scheme}{domain}{path}",
                 st.sampled_from(["https://", "http://", "ftp://", "HTTPS://", ""]), _domain,
                 st.just("") | _path)
_emoji = st.sampled_from([
    "\U0001f44d", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f1eb\U0001f1f7", "1\ufe0f\u20e3", "#\ufe0f\u20e3",
    "\u2764\ufe0f", "\u2764", "\u00a9", "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1", "\U0001fae0",
    "\U0001f469\U0001f3ff\u200d\U0001f4bb", "\U0001f937\u200d\u2640\ufe0f", "\ufe0f", "\U0001f3fb",
])
_cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from(
    list("ひらがなカタカナ한국어。、「」ｶﾀｶﾅ")), min_size=1, max_size=12)
_combining = st.builds(lambda base, marks: base + marks,
                       st.sampled_from(list("aeinoZक")),
                       st.text(alphabet=st.characters(categories=["Mn"]), min_size=1, max_size=4))
_word = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x24F,
                                       blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=15)
_space = st.sampled_from([" ", " ", "\n", "\r\n", "\t", "\u3000", ", ", "\u2014"])
_piece = _url | _domain | _emoji | _cjk | _combining | _word
_mix = st.lists(st.tuples(_piece, _space | st.just("")), min_size=1, max_size=70).map(
    lambda parts: "".join(a + b for a, b in parts))
#: A mix, often after plain words that bring it near X's limit, where miscounting matters.
post_texts = st.builds(lambda words, mix: ("word " * words) + mix, st.integers(0, 60), _mix)

_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(post_texts)
def test_a_truncated_post_is_never_over_xs_limit(text: str) -> None:
    event("over the limit before truncation" if parse_x_text(text).weighted_length > X_MAX_WEIGHTED
          else "within the limit before truncation")
    cut = truncate_to_limit("twitter", text)
    if text.strip():
        assert parse_x_text(cut).weighted_length <= X_MAX_WEIGHTED
        assert limit_error("twitter", cut) is None


@_SETTINGS
@given(post_texts)
def test_the_limit_check_accepts_exactly_what_the_official_rules_accept(text: str) -> None:
    parsed = parse_x_text(text)
    assert (limit_error("twitter", text) is None) == (parsed.valid and bool(text.strip()))


@_SETTINGS
@given(post_texts)
def test_a_model_answer_is_accepted_only_within_xs_limit(text: str) -> None:
    slot = PostSlot("twitter", datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    content = json.dumps({"posts": [{"platform": "twitter", "slot": slot_key(slot.slot_at),
                                     "text": text, "topic": "t"}]})
    completion = SimpleNamespace(choices=[SimpleNamespace(
        message=SimpleNamespace(content=content, refusal=None), finish_reason="stop")])
    outcome = parse_answer(completion, {("twitter", slot_key(slot.slot_at)): slot})
    accepted = list(outcome.accepted.values())
    event("accepted" if accepted else "refused")
    for draft in accepted:
        assert parse_x_text(draft.text).valid
    if text.strip() and parse_x_text(text.strip()).valid:
        assert len(accepted) == 1
