"""The micro-batcher: concurrent requests share one computation, each gets its own answers,
the work in flight is bounded (503 + Retry-After), and a withdrawn request is not computed."""
import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.batcher import MicroBatcher
from api.errors import ApiError
from api.settings import Settings


class Squares:
    """A batch function that squares numbers and remembers every batch it was given; ``gate``
    (when set) holds a batch until the test releases it."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(10)
        if any(i < 0 for i in items):
            raise ValueError("negative")
        self.batches.append(list(items))
        return [i * i for i in items]


def test_concurrent_submissions_share_a_batch_and_get_their_own_answers():
    async def go():
        fn = Squares()
        b = MicroBatcher(fn, window=0.2, max_batch=64).start()
        try:
            answers = await asyncio.gather(*(b.submit([i, i + 100]) for i in range(10)))
        finally:
            await b.stop()
        return fn, answers
    fn, answers = asyncio.run(go())
    assert answers == [[i * i, (i + 100) ** 2] for i in range(10)]
    assert len(fn.batches) == 1 and len(fn.batches[0]) == 20


def test_a_lone_request_waits_no_longer_than_the_window():
    async def go():
        b = MicroBatcher(Squares(), window=0.05).start()
        try:
            t0 = time.perf_counter()
            assert await b.submit([3]) == [9]
            return time.perf_counter() - t0
        finally:
            await b.stop()
    assert asyncio.run(go()) < 0.05 + 0.5        # the window plus generous scheduling slack


def test_batches_stop_at_max_batch_without_splitting_a_request():
    async def go():
        fn = Squares()
        b = MicroBatcher(fn, window=0.2, max_batch=4).start()
        try:
            await asyncio.gather(*(b.submit([i, i]) for i in range(5)))
        finally:
            await b.stop()
        return fn.batches
    batches = asyncio.run(go())
    assert sorted(len(x) for x in batches) == [2, 4, 4]
    assert all(x[0] == x[1] for batch in batches for x in [batch[j:j + 2] for j in range(0, len(batch), 2)])


def test_past_the_bound_requests_are_refused_with_retry_after():
    async def go():
        gate = threading.Event()
        b = MicroBatcher(Squares(gate), window=0, max_in_flight=3, retry_after=7).start()
        try:
            first = asyncio.ensure_future(b.submit([1, 2]))
            await asyncio.sleep(0.05)
            with pytest.raises(ApiError) as refused:
                await b.submit([3, 4])                     # 2 in flight + 2 > 3
            gate.set()
            assert await first == [1, 4]
            assert b.in_flight == 0
            return refused.value
        finally:
            gate.set()
            await b.stop()
    err = asyncio.run(go())
    assert err.code == "SERVICE_OVERLOADED" and err.status == 503 and err.headers == {"Retry-After": "7"}


def test_a_withdrawn_request_is_not_computed():
    async def go():
        gate = threading.Event()
        fn = Squares(gate)
        b = MicroBatcher(fn, window=0).start()
        try:
            busy = asyncio.ensure_future(b.submit([1]))        # holds the worker at the gate
            await asyncio.sleep(0.05)
            queued = asyncio.ensure_future(b.submit([2]))
            kept = asyncio.ensure_future(b.submit([3]))
            await asyncio.sleep(0.05)
            queued.cancel()                                    # its client went away
            gate.set()
            assert await busy == [1] and await kept == [9]
        finally:
            gate.set()
            await b.stop()
        return fn.batches
    batches = asyncio.run(go())
    assert [2] not in batches and all(2 not in x for x in batches)


def test_one_failing_request_does_not_fail_the_others_in_its_batch():
    async def go():
        b = MicroBatcher(Squares(), window=0.2).start()
        try:
            return await asyncio.gather(b.submit([2]), b.submit([-1]), b.submit([4]), return_exceptions=True)
        finally:
            await b.stop()
    good, bad, other = asyncio.run(go())
    assert good == [4] and other == [16] and isinstance(bad, ValueError)


def test_the_service_batches_concurrent_http_requests(model, tmp_path):
    app = create_app(Settings(models_dir=tmp_path, batch_window_ms=300), loader=lambda s: model)
    texts = ["快递丢了", "刹车突然失灵，差点撞上前车", "客服不回复", "退款一直不到账", "信用卡被乱收年费", "手机屏幕坏了"]
    with TestClient(app) as client:
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(lambda t: client.post("/v1/triage", json={"text": t, "id": t}), texts))
        assert [a.status_code for a in answers] == [200] * len(texts)
        assert [a.json()["id"] for a in answers] == texts                # each caller gets its own answer
        assert len({a.json()["prediction_id"] for a in answers}) == len(texts)
        assert app.state.batcher.batches < len(texts)                    # fewer model calls than requests
        alone = client.post("/v1/triage", json={"text": texts[1]}).json()
        together = next(a.json() for a in answers if a.json()["id"] == texts[1])
        assert alone["severity"] == together["severity"] and alone["complaint_type"] == together["complaint_type"]
