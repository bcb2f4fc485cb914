"""The plan schema: a JSON-serialisable plan (instances -> stages -> nodes + layer ranges).

Plain pydantic data, imported by the planner (which produces it), the simulator and the
deployment writer (which consume it) without importing any solver.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from redundancy.errors import ConfigError
from redundancy.storage_io import atomic_write_bytes


class PlannedStage(BaseModel):
    """One stage: data-parallel nodes (config -> count) serving layers [layer_start, layer_end)."""

    nodes: dict[str, int]
    layer_start: int
    layer_end: int


class Instance(BaseModel):
    """One replica (a pipeline) of a model in a region.

    ``prefill_nodes`` non-empty means prefill/decode disaggregation: those nodes (each holding the
    whole model) run prefills, ``stages`` decode, and each prompt's KV cache crosses a link of
    ``kv_link_gbps`` Gbit/s before decoding starts.
    """

    model: str
    region: str
    template: str
    stages: list[PlannedStage]
    throughput_rps: float
    price_per_hour: float
    prefill_nodes: dict[str, int] = Field(default_factory=dict)
    kv_link_gbps: float = 0.0


class ModelOutcome(BaseModel):
    """Per model: demand, planned capacity, served and unmet demand (req/s), cost ($/h)."""

    model: str
    demand_rps: float
    capacity_rps: float
    served_rps: float
    unmet_rps: float
    replicas: int
    cost_per_hour: float


class Plan(BaseModel):
    """A complete plan: the instances to run and what they achieve.

    Produced by :func:`redundancy.coral.planner.plan.plan` (and the baselines), consumed by the
    simulator and the deployment writer; :meth:`save` and :meth:`load` keep it as JSON.

    Attributes
    ----------
    scenario : str
        Name of the scenario planned for.
    mode : str
        How Stage 2 solved it: ``"min_cost"`` when all demand is met, else the scarce objective.
    instances : list of Instance
        The replicas to run, each with its region, stages and planned req/s.
    models : list of ModelOutcome
        Per model: demand, capacity, served and unmet req/s, replicas, cost.
    cost_per_hour : float
        Price of all instances in $ per hour.
    churn_cost : float
        Launch charge against the previous plan in $ (``churn_factor`` x new nodes' prices).
    templates : int
        Templates Stage 2 chose from.
    stage1_seconds, stage2_seconds : float
        Wall-clock seconds of the two stages.
    notes : list of str
        Remarks for a person (uncalibrated GPUs, unmet demand...).

    Examples
    --------
    >>> import tempfile
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.planner.plan import plan
    >>> result = plan(load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                              "gpus_per_node": [1], "regions": ["aws-us-east-2"]}))
    >>> result.mode, len(result.instances), round(result.cost_per_hour, 3)
    ('min_cost', 2, 3.722)
    >>> path = Path(tempfile.mkdtemp()) / "plan.json"
    >>> result.save(path)
    >>> Plan.load(path) == result
    True
    """

    scenario: str
    mode: str
    instances: list[Instance]
    models: list[ModelOutcome]
    cost_per_hour: float
    churn_cost: float
    templates: int
    stage1_seconds: float
    stage2_seconds: float
    notes: list[str]

    def save(self, path: Path) -> None:
        """Write the plan as JSON (atomically)."""
        atomic_write_bytes(Path(path), self.model_dump_json(indent=2).encode())

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a plan written by ``save``."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read plan {path}: {exc}") from None
