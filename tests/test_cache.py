"""The answer cache: least recently used out first, and one computation for concurrent askers, in
one process and across the processes sharing a tier (a question claimed by one is waited for by the
others; a claim given up or expired is taken over)."""

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
    keys = [key for key in client.scan_iter(f"policybot:answer:{first.index.path.name}:*") if not key.endswith(b":claim")]
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


class SharedStore:
    """What a shared tier holds for every process: answers and live claims (a claim's expiry is its removal)."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.claims: dict = {}
        self.peeks: list[list] = []  # the keys of each batched look-up


class Tier:
    """One process's view of a ``SharedStore``, with claims (``bot.answer.cache.SharedTier``)."""

    def __init__(self, store: SharedStore, owner: str) -> None:
        self.store, self.owner = store, owner

    def get(self, key):
        return self.store.values.get(key)

    def set(self, key, value) -> None:
        self.store.values[key] = value

    def take(self, key):
        if key in self.store.values:
            return self.store.values[key]
        return self.store.claims.setdefault(key, self.owner) == self.owner

    def peek(self, keys):
        self.store.peeks.append(list(keys))
        return {key: self.store.values.get(key, True) for key in keys if key in self.store.values or key in self.store.claims}

    def drop(self, key) -> None:
        if self.store.claims.get(key) == self.owner:
            del self.store.claims[key]


def _held(calls: list, release: threading.Event, started: threading.Event | None = None):
    def work(q):
        calls.append(q)
        if started:
            started.set()
        release.wait(10)
        return q.upper()
    return work


def _until(condition) -> None:
    """Wait until ``condition()`` holds (fail, not hang, if it never does)."""
    for _ in range(5000):
        if condition():
            return
        time.sleep(0.002)
    raise AssertionError("never happened")


def test_a_key_another_process_is_working_out_is_waited_for_not_computed():
    store, release, started = SharedStore(), threading.Event(), threading.Event()
    first_calls, second_calls = [], []
    first = AnswerCache(_held(first_calls, release, started), maxsize=8, shared=Tier(store, "first"))
    second = AnswerCache(lambda q: second_calls.append(q) or q.upper(), maxsize=8, shared=Tier(store, "second"))
    results = {}
    threading.Thread(target=lambda: results.update(first=first("q"))).start()
    started.wait(5)  # the first process has claimed q and is working it out
    askers = [threading.Thread(target=lambda n=n: results.update({n: second("q")})) for n in range(5)]
    for t in askers:
        t.start()
    _until(lambda: second.waiting() == 1)  # all five of the second process's askers wait on one key
    release.set()
    for t in askers:
        t.join(10)
    assert first_calls == ["q"] and second_calls == []
    assert results == {"first": ("Q", False), **{n: ("Q", True) for n in range(5)}}
    assert second("q") == ("Q", True)  # now held by the second process itself
    assert all(keys == [("q",)] for keys in store.peeks)  # one key per look-up, however many askers


def test_one_look_up_serves_every_key_a_process_waits_for():
    store, release = SharedStore(), threading.Event()
    first = AnswerCache(_held([], release), maxsize=8, shared=Tier(store, "first"))
    second = AnswerCache(lambda q: pytest.fail("the second process computed"), maxsize=8, shared=Tier(store, "second"))
    workers = [threading.Thread(target=first, args=(q,)) for q in ("a", "b", "c")]
    for t in workers:
        t.start()
    _until(lambda: len(store.claims) == 3)
    results = []
    waiters = [threading.Thread(target=lambda q=q: results.append(second(q))) for q in ("a", "b", "c")]
    for t in waiters:
        t.start()
    _until(lambda: second.waiting() == 3)
    store.peeks.clear()
    _until(lambda: store.peeks)
    assert sorted(store.peeks[-1]) == [("a",), ("b",), ("c",)]
    release.set()
    for t in workers + waiters:
        t.join(10)
    assert sorted(results) == [("A", True), ("B", True), ("C", True)]


def test_a_claim_that_lapses_without_an_answer_is_taken_over():
    store = SharedStore()
    dead = AnswerCache(lambda q: pytest.fail("a dead process computes nothing"), maxsize=8, shared=Tier(store, "dead"))
    assert dead.claim(("q",)) == (None, None) and dead.recall(("q",)) == (None, None)  # claimed, then the process dies
    calls = []
    second = AnswerCache(lambda q: calls.append(q) or q.upper(), maxsize=8, shared=Tier(store, "second"))
    result = []
    asker = threading.Thread(target=lambda: result.append(second("q")))
    asker.start()
    _until(lambda: second.waiting() == 1)
    assert calls == []  # waiting, not computing, while the claim is live
    del store.claims[("q",)]  # the claim expires
    asker.join(10)
    assert result == [("Q", False)] and calls == ["q"]
    assert store.values[("q",)] == "Q"


def test_a_claim_given_up_is_free_for_another_process_at_once():
    store = SharedStore()
    first = AnswerCache(lambda q: q, maxsize=8, shared=Tier(store, "first"))
    first.claim(("q",))
    first.recall(("q",))
    second = Tier(store, "second")
    assert second.take(("q",)) is False
    first.release(("q",), RuntimeError("refused"))
    assert second.take(("q",)) is True


def _claimed_and_held(first, second, monkeypatch, question: str):
    """The first worker working ``question`` out (held until the returned event is set) and the second asking it."""
    release, started, decide = threading.Event(), threading.Event(), first.decider.decide

    def held(*args, **kwargs):
        started.set()
        release.wait(30)
        return decide(*args, **kwargs)

    monkeypatch.setattr(first.decider, "decide", held)
    monkeypatch.setattr(second.decider, "decide", lambda *a, **k: pytest.fail("the second worker computed the answer"))
    out: dict = {}
    one = threading.Thread(target=lambda: out.update(first=first.work_out(first.prepare(question))))
    one.start()
    started.wait(30)
    two = threading.Thread(target=lambda: out.update(second=second.work_out(second.prepare(question))))
    two.start()
    return release, (one, two), out


def test_a_question_one_worker_is_working_out_is_answered_to_the_other_from_the_machines_file(machine_bots, monkeypatch):
    _waits_for_the_first(*machine_bots, monkeypatch)


def test_a_question_one_worker_is_working_out_is_answered_to_the_other_through_redis(shared_bots, monkeypatch):
    _waits_for_the_first(*shared_bots, monkeypatch)


def _waits_for_the_first(first, second, monkeypatch) -> None:
    """The second worker asks what the first is working out: it waits for the first's answer, computing nothing."""
    release, threads, out = _claimed_and_held(first, second, monkeypatch, "社区综合服务设施每天开放时间不少于多少小时？")
    _until(lambda: second.answers.waiting() == 1)  # the second waits for the first's claim
    release.set()
    for t in threads:
        t.join(30)
    (answer, hits), cached = out["first"]
    (again, again_hits), again_cached = out["second"]
    assert not cached and again_cached
    assert again.model_dump(exclude={"latency_ms"}) == answer.model_dump(exclude={"latency_ms"})
    assert [h.clause.id for h in again_hits] == [h.clause.id for h in hits]


def test_a_question_claimed_by_a_worker_that_died_is_worked_out_by_another_after_the_claim_timeout(settings, embedder, tmp_path):
    from bot.pipeline import PolicyBot

    shared = settings.model_copy(update={"cache_url": f"sqlite:///{tmp_path / 'answers.sqlite'}", "claim_timeout": 0.5})
    dead, alive = PolicyBot(shared, embedder=embedder), PolicyBot(shared, embedder=embedder)
    job = dead.prepare("社区综合服务设施每天开放时间不少于多少小时？")
    assert dead.answers.claim(job.key) == (None, None) and dead.answers.recall(job.key) == (None, None)  # claimed; never answered
    out = []
    asker = threading.Thread(target=lambda: out.append(alive.work_out(alive.prepare(job.question))), daemon=True)
    asker.start()
    asker.join(60)
    assert out, "the lapsed claim was never taken over"
    (answer, _), cached = out[0]
    assert not cached and answer.found
