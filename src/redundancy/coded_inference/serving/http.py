"""HTTP endpoint (FastAPI + uvicorn, loopback only) in front of a real-time serving driver.

``POST /predict`` with ``{"input": [...]}`` (the query flattened, C*H*W numbers) answers
``{"query_id", "label", "logits", "approximate", "source", "latency_ms"}``; a malformed payload
gets a 422 naming the problem, a query the frontend failed (its tasks lost and nothing left to
run it, or past its deadline) a 503 with the reason, an answer that does not come in time a 504.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from redundancy.coded_inference.serving.realtime import ServingDriver
from redundancy.errors import ParameterError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PredictRequest(BaseModel):
    """One query, flattened."""

    input: list[float] = Field(min_length=1)


class PredictResponse(BaseModel):
    """The frontend's answer; ``approximate`` marks a decoded or backup output."""

    query_id: int
    label: int
    logits: list[float]
    approximate: bool
    source: str
    latency_ms: float


def create_app(
    driver: ServingDriver, input_shape: tuple[int, int, int], timeout: float | None = None
) -> FastAPI:
    """A FastAPI app answering queries of ``input_shape`` through ``driver``.

    ``timeout`` (seconds; default: the frontend's deadline plus one) bounds the wait for a reply.
    """
    timeout = driver.frontend.deadline + 1.0 if timeout is None else timeout
    size = math.prod(input_shape)
    app = FastAPI(title="redundancy coded serving", version="1")

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "strategy": driver.frontend.strategy, "k": driver.frontend.k}

    @app.post("/predict", response_model=PredictResponse)
    async def predict(request: PredictRequest) -> PredictResponse:
        if len(request.input) != size:
            raise HTTPException(
                422, f"input has {len(request.input)} numbers, expected {size} {input_shape}"
            )
        if not all(math.isfinite(v) for v in request.input):
            raise HTTPException(422, "input contains NaN or infinity")
        x = torch.tensor(request.input, dtype=torch.float32).reshape(input_shape)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(driver.submit(x)), timeout)
        except TimeoutError:
            raise HTTPException(504, f"no answer within {timeout} s") from None
        if answer.failed:
            raise HTTPException(503, f"query {answer.query_id} failed: {answer.reason}")
        return PredictResponse(
            query_id=answer.query_id,
            label=int(answer.output.argmax()),
            logits=[float(v) for v in answer.output],
            approximate=answer.approximate,
            source=answer.source,
            latency_ms=1e3 * answer.latency,
        )

    return app


def check_loopback(host: str) -> str:
    """Only loopback addresses may be served on: anything else is a ParameterError."""
    if host not in LOOPBACK:
        raise ParameterError(f"host={host!r} is not allowed (allowed: {', '.join(LOOPBACK)})")
    return host


@contextmanager
def http_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yield its base URL; stop it on exit."""
    import uvicorn

    config = uvicorn.Config(app, host=check_loopback(host), port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ParameterError(f"the HTTP server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
