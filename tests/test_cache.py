"""The answer cache: least recently used out first, and one computation for concurrent askers."""

from __future__ import annotations

import threading
import time

import pytest

from bot.answer.cache import AnswerCache


def test_a_repeated_key_is_computed_once_and_reported_as_cached():
    calls = []
    cache = AnswerCache(lambda q: calls.append(q) or q.upper(), maxsize=2)
    assert cache("a") == ("A", False)
    assert cache("a") == ("A", True)
    assert calls == ["a"]


def test_the_least_recently_used_key_is_dropped_first():
    calls = []
    cache = AnswerCache(lambda q: calls.append(q) or q, maxsize=2)
    cache("a"), cache("b"), cache("a"), cache("c")  # b is the least recently used
    cache("a"), cache("b")
    assert calls == ["a", "b", "c", "b"]


def test_concurrent_misses_of_one_key_compute_once():
    started, release, calls = threading.Event(), threading.Event(), []

    def slow(q):
        calls.append(q)
        started.set()
        release.wait(5)
        return q

    cache = AnswerCache(slow, maxsize=8)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache("q"))) for _ in range(8)]
    threads[0].start()
    started.wait(5)
    for t in threads[1:]:
        t.start()
    time.sleep(0.1)  # the others are now waiting on the first computation
    release.set()
    for t in threads:
        t.join(5)
    assert calls == ["q"]
    assert sorted(results) == [("q", False)] + [("q", True)] * 7


def test_a_failed_computation_is_not_cached_and_its_waiters_see_the_error():
    attempts = []

    def flaky(q):
        attempts.append(q)
        if len(attempts) == 1:
            raise RuntimeError("engine down")
        return q

    cache = AnswerCache(flaky, maxsize=8)
    with pytest.raises(RuntimeError, match="engine down"):
        cache("q")
    assert cache("q") == ("q", False)


REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture()
def shared_bots(settings, embedder, bot):
    """Two processes' worth of pipelines on the same build, sharing answers through the machine's Redis."""
    import redis

    from bot.pipeline import PolicyBot

    client = redis.Redis.from_url(REDIS)
    client.ping()
    shared = settings.model_copy(update={"cache_url": REDIS})
    yield PolicyBot(shared, embedder=embedder), PolicyBot(shared, embedder=embedder)
    for key in client.scan_iter(f"policybot:answer:{bot.index.path.name}:*"):
        client.delete(key)


def _served_to_the_second(first, second, monkeypatch) -> None:
    """An answer the first worker computed is served to the second, which computes nothing."""
    question = "社区综合服务设施每天开放时间不少于多少小时？"
    answer = first.ask(question)
    monkeypatch.setattr(second.decider, "decide", lambda *a, **k: pytest.fail("the second worker computed the answer"))
    again, hits = second.run(question)
    assert again.model_dump(exclude={"latency_ms"}) == answer.model_dump(exclude={"latency_ms"})
    assert [h.clause.id for h in hits] == [h.clause.id for h in first.run(question)[1]]


def test_an_answer_computed_by_one_worker_is_served_to_another_from_redis(shared_bots, monkeypatch):
    _served_to_the_second(*shared_bots, monkeypatch)


def test_a_worker_with_recalibrated_models_does_not_serve_the_old_models_answers(settings, embedder, bot, tmp_path):
    import redis

    from bot.pipeline import PolicyBot

    model = tmp_path / "refusal.json"
    model.write_text(bot.refusal.to_json(), encoding="utf-8")
    same = settings.model_copy(update={"cache_url": REDIS, "refusal_model": model, "lexical_gate": False})
    question = "社区综合服务设施每天开放时间不少于多少小时？"
    try:
        assert PolicyBot(same, embedder=embedder).ask(question).found
        # Re-calibrated in place: the same settings, a model that refuses everything.
        model.write_text(bot.refusal.to_json().replace(f'"threshold": {bot.refusal.threshold}', '"threshold": 1.0'), encoding="utf-8")
        assert PolicyBot(same, embedder=embedder).ask(question).reason == "low_confidence"
    finally:
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"policybot:answer:{bot.index.path.name}:*"):
            client.delete(key)


def test_answers_are_served_when_redis_is_down(settings, embedder, bot):
    from bot.pipeline import PolicyBot

    down = PolicyBot(settings.model_copy(update={"cache_url": "redis://127.0.0.1:1/0"}), embedder=embedder)
    answer = down.ask("社区综合服务设施每天开放时间不少于多少小时？")
    assert answer.found and answer.citations


@pytest.mark.parametrize("garbage", [b"garbage{", b"[1,2]", b'{"answer": {"found": "maybe"}, "hits": []}', b'{"hits": [[7]]}', b"\xff\xfe"])
def test_an_unreadable_shared_entry_is_a_miss_and_is_replaced(shared_bots, garbage):
    import redis

    first, second = shared_bots
    question = "社区综合服务设施每天开放时间不少于多少小时？"
    expected = first.ask(question)
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"policybot:answer:{first.index.path.name}:*"))
    assert keys
    for key in keys:
        client.set(key, garbage)
    again = second.ask(question)  # no local copy: the shared entry is read, found unreadable, recomputed
    assert again.model_dump(exclude={"latency_ms"}) == expected.model_dump(exclude={"latency_ms"})
    assert all(client.get(key) != garbage for key in keys)


@pytest.fixture()
def machine_bots(settings, embedder, tmp_path):
    """Two workers' pipelines on one machine, sharing answers through a SQLite file (as ``serve`` sets up)."""
    from bot.pipeline import PolicyBot

    shared = settings.model_copy(update={"cache_url": f"sqlite:///{tmp_path / 'answers.sqlite'}"})
    return PolicyBot(shared, embedder=embedder), PolicyBot(shared, embedder=embedder)


def test_an_answer_computed_by_one_worker_is_served_to_another_from_the_machines_file(machine_bots, monkeypatch):
    _served_to_the_second(*machine_bots, monkeypatch)


def test_answers_are_served_when_the_machines_answer_file_is_unusable(settings, embedder, tmp_path):
    from bot.pipeline import PolicyBot

    broken = tmp_path / "answers.sqlite"
    broken.write_bytes(b"not a database" * 100)
    bot = PolicyBot(settings.model_copy(update={"cache_url": f"sqlite:///{broken}"}), embedder=embedder)
    answer = bot.ask("社区综合服务设施每天开放时间不少于多少小时？")
    assert answer.found and answer.citations
