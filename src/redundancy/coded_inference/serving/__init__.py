"""Coded serving: a prediction-serving frontend that answers stragglers' queries via ParM.

Layers, each usable alone: ``frontend`` (coding groups, dispatch, decoding, hedging; no I/O),
``simulation`` (deterministic virtual-time instances), ``realtime`` (thread instances and a driver
thread), ``ray_backend`` (Ray actor instances), ``http`` (FastAPI endpoint), ``loadgen`` (Poisson
open-loop load), ``metrics`` (percentiles, reconstructed fraction and accuracy)::

    from redundancy.coded_inference.serving import ServingConfig, simulate, summarize
    result = simulate(ServingConfig(strategy="parm"), models, queries)
    print(summarize(result, models.code.deployed))
"""

from redundancy.coded_inference.serving.config import (
    STRATEGIES,
    Crash,
    FaultConfig,
    LatencyConfig,
    ServingConfig,
    Slowdown,
)
from redundancy.coded_inference.serving.frontend import Answer, Frontend, Task, make_layout
from redundancy.coded_inference.serving.metrics import ServingReport, markdown, summarize
from redundancy.coded_inference.serving.models import ServingModels, from_bundle, quick_models
from redundancy.coded_inference.serving.simulation import RunResult, simulate

__all__ = [
    "STRATEGIES",
    "Answer",
    "Crash",
    "FaultConfig",
    "Frontend",
    "LatencyConfig",
    "RunResult",
    "ServingConfig",
    "ServingModels",
    "ServingReport",
    "Slowdown",
    "Task",
    "from_bundle",
    "make_layout",
    "markdown",
    "quick_models",
    "simulate",
    "summarize",
]
