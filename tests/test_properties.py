"""Property-based checks: any text in the request models and text helpers gives a clear result,
never a crash; a bounded schemathesis run of the OpenAPI spec finds no 5xx."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.answer.figures import normalize_figures, units_in
from bot.answer.query import understand
from bot.api.schemas import AskRequest, ChatRequest
from bot.corpus.chunking import parse_clauses
from bot.models import Document
from bot.text import clean_text, is_clean_text, normalize, sentence_spans

ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=200)  # lone surrogates included
DOC = Document(id="d", title="测试文件", issuer="x", issued="2024-01-01", level="市", source="test", file="d.txt")


@given(ANY_TEXT)
def test_text_helpers_accept_any_string(text):
    normalize(text)
    normalize_figures(text)
    units_in(text)
    assert all(0 <= s < e <= len(text) for s, e in sentence_spans(text))
    assert is_clean_text(clean_text(text))


@given(ANY_TEXT)
def test_query_understanding_accepts_any_string(text):
    q = understand(text)
    assert q.text == text.strip()


@given(st.text(max_size=400))
def test_every_clause_is_a_verbatim_span_of_any_text(text):
    for c in parse_clauses(DOC, text):
        assert text[c.start:c.end] == c.text


@given(st.one_of(ANY_TEXT, st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=3)))
def test_ask_requests_validate_or_reject_cleanly(value):
    try:
        AskRequest.model_validate({"question": value})
    except ValidationError:
        pass


@given(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "nobody"]),
                                       "content": st.one_of(ANY_TEXT, st.none(), st.lists(
                                           st.fixed_dictionaries({"type": st.text(max_size=5),
                                                                  "text": st.one_of(ANY_TEXT, st.integers())}), max_size=2))}),
                max_size=3))
def test_chat_requests_validate_or_reject_cleanly(messages):
    try:
        req = ChatRequest.model_validate({"model": "policy-bot", "messages": messages})
    except ValidationError:
        return
    for m in req.messages:
        assert isinstance(m.text(), str)


def test_the_openapi_spec_survives_a_bounded_schemathesis_run(live_server):
    import schemathesis
    from hypothesis import Phase

    schema = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def run(case):  # 25 generated requests per operation
            response = case.call(base_url=live_server.url, timeout=30)
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:200]))

        run()
    assert not failures, failures[:5]


@given(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 7.25]) | st.floats(0, 10, width=32), max_size=300),
       st.integers(1, 40))
def test_the_lexical_top_k_is_the_k_best_of_a_full_stable_sort(scores, k):
    """``top_k`` skips most clauses of a large corpus; it must still pick exactly what sorting all would."""
    from bot.index.backends import top_k

    arr = np.array(scores, dtype=np.float32)
    # "Positive" is at or above the backend's floor for a score, 1e-12 (as float32, like the scores).
    ranked = [i for i in np.argsort(-arr, kind="stable") if arr[i] >= np.float32(1e-12)][:k]
    top = top_k(arr, k)
    got = top[np.lexsort((top, -arr[top]))][:k]
    assert got.tolist() == ranked
