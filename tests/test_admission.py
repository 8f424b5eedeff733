"""Admission by expected waiting time (issue 24): a /v1 request is shed only when the wait it can
expect (requests in flight x the worker's recent time per answer) exceeds the bound."""

from __future__ import annotations

import asyncio

from bot.api.app import LoadShedding


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Held:
    """An ASGI app whose answers wait until released, so requests stay in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _request(app, path: str = "/v1/ask") -> tuple[int, dict]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


async def _in_flight(app: LoadShedding, n: int) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(_request(app)) for _ in range(n)]
    while app.inflight < n:
        await asyncio.sleep(0)
    return tasks


def test_a_request_is_shed_only_when_its_expected_wait_exceeds_the_bound():
    async def scenario():
        held = Held()
        app = LoadShedding(held, max_wait=3 * LoadShedding.PRIOR_S)
        queued = await _in_flight(app, 3)  # a newcomer waits 3 x the prior: not over the bound
        admitted = asyncio.create_task(_request(app))
        while app.inflight < 4:
            await asyncio.sleep(0)
        status, headers = await _request(app)  # 4 ahead: over the bound
        held.release.set()
        return status, headers, [await t for t in (*queued, admitted)]

    status, headers, answered = asyncio.run(scenario())
    assert status == 503 and int(headers["retry-after"]) >= 1
    assert [s for s, _ in answered] == [200] * 4


def test_the_wait_follows_the_measured_time_per_answer():
    async def scenario():
        clock, held = Clock(), Held()
        app = LoadShedding(held, max_wait=10.0, clock=clock)
        for _ in range(60):  # answers that each keep the worker 2 s
            task = asyncio.create_task(_request(app))
            while app.inflight < 1:
                await asyncio.sleep(0)
            clock.now += 2.0
            held.release.set()
            await task
            held.release = asyncio.Event()
        measured = app.service_s
        queued = await _in_flight(app, 6)  # 6 x ~2 s ahead of a newcomer: over 10 s
        status, headers = await _request(app)
        held.release.set()
        await asyncio.gather(*queued)
        return measured, status, headers

    measured, status, headers = asyncio.run(scenario())
    assert 1.9 < measured <= 2.0
    assert status == 503 and int(headers["retry-after"]) == 2  # ~12 s expected: back under the bound in ~2 s


def test_a_hall_burst_of_quick_answers_is_queued_not_refused():
    async def scenario():
        clock, held = Clock(), Held()
        app = LoadShedding(held, max_wait=10.0, clock=clock)
        held.release.set()
        for _ in range(50):  # cached answers: a millisecond each
            task = asyncio.create_task(_request(app))
            await asyncio.sleep(0)
            clock.now += 0.001
            await task
        held.release = asyncio.Event()
        queued = await _in_flight(app, 1000)  # a thousand people ask at once
        newcomer = asyncio.create_task(_request(app))
        while app.inflight < 1001:  # admitted, not answered 503 at once
            await asyncio.sleep(0)
        held.release.set()
        await asyncio.gather(*queued)
        return (await newcomer)[0]

    assert asyncio.run(scenario()) == 200


def test_liveness_and_the_page_are_never_shed():
    async def scenario():
        held = Held()
        app = LoadShedding(held, max_wait=0.001)
        queued = await _in_flight(app, 1)
        shed, _ = await _request(app)  # one ahead: over a millisecond's bound
        held.release.set()  # what is not /v1 goes straight through to the app
        passed = [(await _request(app, path))[0] for path in ("/healthz", "/readyz", "/")]
        await asyncio.gather(*queued)
        return shed, passed

    assert asyncio.run(scenario()) == (503, [200, 200, 200])
