"""`redundancy parm` and `redundancy learned-code`: ParM parity models, learned codes, serving.

A thin layer over ``redundancy.coded_inference``. Cheap to import: torch, ray and the library
are imported inside the commands. Results go to stdout (a table, or one JSON document with
``--json``); progress bars and notes go to stderr.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from redundancy import ui
from redundancy.errors import ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "parm": "ParM parity models and learned codes: rebuild unavailable predictions.",
    "learned-code": "Learned encoder/decoder codes (r = 1) around a frozen model.",
}
app = typer.Typer(
    help="ParM parity models and learned codes: rebuild unavailable predictions.",
    no_args_is_help=True,
)
learned_app = typer.Typer(
    help="Learned encoder/decoder codes (r = 1) around a frozen model.", no_args_is_help=True
)
app.add_typer(learned_app, name="learned")
COMMANDS = {"parm": app, "learned-code": learned_app}  # `redundancy parm learned` == `learned-code`

_CONFIG = typer.Option(None, "--config", help="YAML/JSON config (fields as in ParmConfig).")
_QUICK = typer.Option(
    True, "--quick/--full", help="Quick: few epochs, capped data (seconds). Full: the config as is."
)
_OUT = typer.Option(Path("runs/parm"), "--out", help="Output folder (bundle, results, plot).")
_RESUME = typer.Option(False, "--resume", help="Continue from the checkpoint in --out.")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr.")
_THREADS = typer.Option(1, "--threads", min=1, help="torch CPU threads (small models: 1 is best).")
_SEED = typer.Option(None, "--seed", min=0, help="Seed of data splits, weights and groups.")
_JSON = typer.Option(False, "--json", help="Print one JSON document on stdout instead.")
_BACKENDS = ("threads", "ray")
# config field -> the flag that sets it, so an error names what the user typed
_FLAGS = {
    "k": "-k/--k",
    "seed": "--seed",
    "model": "--model",
    "encoder": "--encoder",
    "loss": "--loss",
    "data.dataset": "--dataset",
    "data.root": "--root",
    "strategy": "--strategy",
    "rate_qps": "--rate",
    "queries": "--queries",
    "routing": "--routing",
    "deadline_ms": "--deadline-ms",
}


def _merge(base: object, overrides: dict[str, object]) -> object:
    """Apply the CLI options that were given on top of the config (validated again)."""
    from redundancy.coded_inference.config import parse_config

    raw = base.model_dump(mode="json")  # type: ignore[attr-defined]
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("dataset", "root"):
            raw["data"][key] = str(value) if isinstance(value, Path) else value
        else:
            raw[key] = value
    return parse_config(raw, type(base), source="options", labels=_FLAGS)


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities as None, so it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _show(results: list, title: str, out: Path, as_json: bool) -> None:
    """Write results.json/.md and the plot into ``out``; print the table (or JSON)."""
    from redundancy.coded_inference.evaluation import table, write_results

    paths = write_results(results, out, title)
    if as_json:
        document = {"title": title, "results": [r.as_dict() for r in results], "written": paths}
        ui.print_json(_plain(document))
        return
    columns, rows = table(results)
    ui.print_table(columns, rows, title=title)
    ui.note(f"written: {', '.join(str(p) for p in paths)}")


@app.command()
def train(
    config: Path = _CONFIG,
    dataset: str = typer.Option(None, help="mnist5k | fashion | digits | cifar10"),
    root: Path = typer.Option(None, help="Data folder for fashion / cifar10."),
    model: str = typer.Option(None, help="base-mlp | small-cnn | resnet18 | linear"),
    k: int = typer.Option(
        None, "-k", "--k", help="Queries per coding group (2..16; 2 or 4 for concat)."
    ),
    encoder: str = typer.Option(None, help="addition | concatenation"),
    deployed: Path = typer.Option(None, help="State dict of --model to use as deployed model."),
    seed: int = _SEED,
    quick: bool = _QUICK,
    out: Path = _OUT,
    resume: bool = _RESUME,
    progress: bool = _PROGRESS,
    threads: int = _THREADS,
    as_json: bool = _JSON,
) -> None:
    """Train deployed model, cheap backup and parity model; save bundle.pt and the scores."""
    import torch

    from redundancy.coded_inference import config as cfg
    from redundancy.coded_inference.data import load_data
    from redundancy.coded_inference.models import load_model
    from redundancy.coded_inference.pipeline import run_parm, save_bundle

    base = cfg.load_config(config, cfg.ParmConfig) if config else cfg.ParmConfig()
    overrides = {"dataset": dataset, "root": root, "model": model, "k": k, "encoder": encoder}
    parm = _merge(base, overrides | {"seed": seed})
    parm = cfg.quick_variant(parm) if quick else parm
    torch.set_num_threads(threads)
    torch.manual_seed(parm.seed)
    data = load_data(parm.data)
    user = None
    if deployed is not None:
        user = load_model(deployed, parm.model, data.input_shape, data.n_classes)
    run = run_parm(
        parm, data=data, deployed=user, checkpoint_dir=out, resume=resume, progress=progress
    )
    save_bundle(run, out / "bundle.pt")
    title = f"ParM {parm.encoder} k={parm.k} on {data.name} ({parm.model})"
    _show(run.results, title, out, as_json)


@app.command()
def evaluate(
    bundle: Path = typer.Option(Path("runs/parm/bundle.pt"), help="Bundle from `parm train`."),
    k: int = typer.Option(None, "-k", "--k", help="Refuse a bundle trained for another k."),
    out: Path = typer.Option(None, help="Where to write results (default: the bundle's folder)."),
    as_json: bool = _JSON,
) -> None:
    """Score a saved parity model and both baselines on its data set's test split."""
    from redundancy.coded_inference.data import load_data
    from redundancy.coded_inference.pipeline import load_bundle, score

    code, cheap, parm = load_bundle(bundle, k)
    data = load_data(parm.data)
    results = score(code, cheap, data, parm.seed)
    title = f"ParM {parm.encoder} k={parm.k} on {data.name} ({parm.model})"
    _show(results, title, out or bundle.parent, as_json)


app.command("eval", hidden=True, help="Alias of evaluate.")(evaluate)


@learned_app.command("train")
def learned_train(
    config: Path = _CONFIG,
    dataset: str = typer.Option(None, help="mnist5k | fashion | digits | cifar10"),
    root: Path = typer.Option(None, help="Data folder for fashion / cifar10."),
    k: int = typer.Option(None, "-k", "--k", help="Queries per coding group (2..8; paper: 2, 5)."),
    encoder: str = typer.Option(None, help="mlp | conv"),
    loss: str = typer.Option(None, help="kl | mse | ce"),
    seed: int = _SEED,
    quick: bool = _QUICK,
    out: Path = typer.Option(Path("runs/learned"), "--out", help="Output folder."),
    resume: bool = _RESUME,
    progress: bool = _PROGRESS,
    threads: int = _THREADS,
    as_json: bool = _JSON,
) -> None:
    """Train a deployed model and a learned code around it; save learned.pt and the scores."""
    import torch

    from redundancy.coded_inference import config as cfg
    from redundancy.coded_inference.pipeline import run_learned, save_learned

    base = cfg.load_config(config, cfg.LearnedCodeConfig) if config else cfg.LearnedCodeConfig()
    overrides = {"dataset": dataset, "root": root, "k": k, "encoder": encoder, "loss": loss}
    learned = _merge(base, overrides | {"seed": seed})
    learned = cfg.quick_variant(learned) if quick else learned
    torch.set_num_threads(threads)
    torch.manual_seed(learned.seed)
    run = run_learned(learned, checkpoint_dir=out, resume=resume, progress=progress)
    save_learned(run, out / "learned.pt")
    title = f"learned {learned.encoder} code k={learned.k} ({learned.loss}) on {run.data.name}"
    _show(run.results, title, out, as_json)


@learned_app.command("evaluate")
def learned_evaluate(
    bundle: Path = typer.Option(Path("runs/learned/learned.pt"), help="From `learned train`."),
    k: int = typer.Option(None, "-k", "--k", help="Refuse a code trained for another k."),
    out: Path = typer.Option(None, help="Where to write results (default: the bundle's folder)."),
    as_json: bool = _JSON,
) -> None:
    """Score a saved learned code and the default-prediction baseline on the test split."""
    from redundancy.coded_inference.data import load_data
    from redundancy.coded_inference.evaluation import default_prediction_baseline
    from redundancy.coded_inference.learned import evaluate_learned_code
    from redundancy.coded_inference.pipeline import load_learned
    from redundancy.coded_inference.training import predict_logits

    code, deployed, learned = load_learned(bundle, k)
    data = load_data(learned.data)
    results = [
        evaluate_learned_code(code, deployed, data.x_test, data.y_test, seed=learned.seed),
        default_prediction_baseline(
            data.y_train, predict_logits(deployed, data.x_test), data.y_test
        ),
    ]
    title = f"learned {learned.encoder} code k={learned.k} on {data.name}"
    _show(results, title, out or bundle.parent, as_json)


learned_app.command("eval", hidden=True, help="Alias of evaluate.")(learned_evaluate)


_SERVE_CONFIG = typer.Option(None, "--config", help="YAML/JSON config (fields as ServingConfig).")
_BUNDLE = typer.Option(
    None, "--bundle", help="bundle.pt from `parm train` (default: train digits)."
)
_ROUTING = typer.Option(None, help="Primary routing: round-robin | least-outstanding.")
_CANCEL = typer.Option(None, "--cancel/--no-cancel", help="Drop queued work no longer needed.")
_DEADLINE = typer.Option(
    None, "--deadline-ms", help="Answer a query still unanswered this long with a failure."
)


def _check_backend(backend: str, allowed: tuple[str, ...]) -> str:
    if backend not in allowed:
        raise ParameterError(f"--backend {backend!r} is unknown (allowed: {', '.join(allowed)})")
    return backend


def _serving_setup(config: Path | None, bundle: Path | None, overrides: dict[str, object]):
    """Config with CLI overrides, the models, and the test queries with labels."""
    import torch

    from redundancy.coded_inference.config import load_config, parse_config
    from redundancy.coded_inference.serving import ServingConfig, from_bundle, quick_models

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = load_config(config, ServingConfig) if config else ServingConfig()
    raw = base.model_dump(mode="json")
    raw.update({key: value for key, value in overrides.items() if value is not None})
    serving = parse_config(raw, ServingConfig, source="options", labels=_FLAGS)
    if bundle is None:
        models, data = quick_models(k=serving.k, progress=True)
    else:
        from redundancy.coded_inference.data import load_data
        from redundancy.coded_inference.pipeline import load_bundle

        models = from_bundle(bundle, serving.k)
        data = load_data(load_bundle(bundle, serving.k)[2].data)
    return serving, models, data


def _run_serving(serving, models, data, backend: str, max_seconds: float):
    """One run on the simulator, threads or Ray, with a progress bar of the queries sent."""
    from redundancy.coded_inference.serving import simulate
    from redundancy.coded_inference.serving.realtime import serve_realtime

    if backend == "sim":
        return simulate(serving, models, data.x_test)
    label = f"{serving.strategy}: sending {serving.queries} queries ({backend})"
    with ui.progress(label, total=serving.queries) as advance:
        run = dict(backend=backend, max_seconds=max_seconds, on_send=advance)
        if backend == "ray":
            from redundancy.coded_inference.serving.ray_backend import ray_session

            with ray_session():
                return serve_realtime(serving, models, data.x_test, **run)
        return serve_realtime(serving, models, data.x_test, **run)


def _report(serving, backend: str, results, reports, title: str, as_json: bool, **extra) -> None:
    """The serving table (or JSON), with how every query sent ended."""
    from redundancy.coded_inference.serving.metrics import TABLE_COLUMNS, table_rows

    if as_json:
        runs = [
            {**report.as_dict(), "accounting": result.accounting()}
            for result, report in zip(results, reports, strict=True)
        ]
        config = serving.model_dump(mode="json")
        document = {"title": title, "backend": backend, "config": config, "runs": runs}
        ui.print_json(_plain(document | extra))
        return
    ui.print_table(TABLE_COLUMNS, table_rows(reports), title=title)
    for result in results:
        for failure in result.failed[:3]:
            ui.note(f"{result.strategy}: query {failure.query_id} failed: {failure.reason}")
        if len(result.failed) > 3:
            ui.note(f"{result.strategy}: {len(result.failed) - 3} more queries failed")
    for key, value in extra.items():
        ui.note(f"{key}: {value}")


@app.command()
def serve(
    config: Path = _SERVE_CONFIG,
    bundle: Path = _BUNDLE,
    strategy: str = typer.Option(None, help="none | equal-resources | cheap-backup | parm"),
    k: int = typer.Option(None, "-k", "--k", help="Queries per coding group."),
    backend: str = typer.Option("threads", "--backend", help="threads | ray."),
    host: str = typer.Option("127.0.0.1", help="Loopback address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port)."),
    duration: float = typer.Option(
        None, min=0.1, max=86_400.0, help="Stop after this many seconds (default: at Ctrl-C)."
    ),
    deadline_ms: float = _DEADLINE,
) -> None:
    """Serve POST /predict over HTTP on loopback until Ctrl-C (or for --duration seconds)."""
    import time
    from contextlib import nullcontext

    from redundancy.coded_inference.serving.http import check_loopback, create_app, http_server
    from redundancy.coded_inference.serving.ray_backend import ray_session
    from redundancy.coded_inference.serving.realtime import make_driver

    check_loopback(host)
    _check_backend(backend, _BACKENDS)
    overrides = {"strategy": strategy, "k": k, "deadline_ms": deadline_ms}
    serving, models, data = _serving_setup(config, bundle, overrides)
    with ray_session() if backend == "ray" else nullcontext():
        driver = make_driver(serving, models, backend)
        try:
            with http_server(create_app(driver, data.input_shape), host, port) as url:
                until = f"for {duration:g} s" if duration else "until Ctrl-C"
                ui.note(f"serving {serving.strategy} (k={serving.k}) at {url}/predict {until}")
                try:
                    if duration:
                        time.sleep(duration)
                    else:
                        _wait_forever()
                except KeyboardInterrupt:
                    pass
        finally:
            driver.close()
    ui.note("stopped")


def _wait_forever() -> None:
    """Sleep until interrupted (Ctrl-C raises KeyboardInterrupt in the main thread)."""
    import time

    while True:
        time.sleep(3600)


@app.command()
def loadtest(
    config: Path = _SERVE_CONFIG,
    bundle: Path = _BUNDLE,
    strategy: str = typer.Option(None, help="none | equal-resources | cheap-backup | parm"),
    rate: float = typer.Option(None, help="Poisson arrival rate (queries per second)."),
    queries: int = typer.Option(300, min=1, max=1_000_000, help="Number of queries."),
    k: int = typer.Option(None, "-k", "--k", help="Queries per coding group."),
    backend: str = typer.Option("threads", "--backend", help="threads | ray | sim."),
    max_seconds: float = typer.Option(30.0, min=0.1, max=3_600.0, help="Longest send time."),
    routing: str = _ROUTING,
    cancel: bool = _CANCEL,
    deadline_ms: float = _DEADLINE,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """Open-loop Poisson load against one strategy; prints the latency table."""
    from redundancy.coded_inference.serving import summarize

    _check_backend(backend, (*_BACKENDS, "sim"))
    overrides = {"strategy": strategy, "rate_qps": rate, "queries": queries, "k": k}
    overrides |= {"routing": routing, "cancel": cancel, "deadline_ms": deadline_ms, "seed": seed}
    serving, models, data = _serving_setup(config, bundle, overrides)
    result = _run_serving(serving, models, data, backend, max_seconds)
    report = summarize(result, models.code.deployed, data.y_test)
    title = f"{serving.strategy} at {serving.rate_qps:g} qps ({backend})"
    _report(serving, backend, [result], [report], title, as_json)


@app.command()
def compare(
    config: Path = _SERVE_CONFIG,
    bundle: Path = _BUNDLE,
    rate: float = typer.Option(None, help="Poisson arrival rate (queries per second)."),
    queries: int = typer.Option(5_000, min=1, max=1_000_000, help="Queries per strategy."),
    backend: str = typer.Option("sim", "--backend", help="sim | threads | ray."),
    out: Path = typer.Option(Path("runs/serving"), "--out", help="Where latency_cdf.png goes."),
    max_seconds: float = typer.Option(30.0, min=0.1, max=3_600.0, help="Longest send time."),
    routing: str = _ROUTING,
    cancel: bool = _CANCEL,
    deadline_ms: float = _DEADLINE,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """Every strategy at the same instance count, load and policies; table plus CDF plot."""
    from redundancy.coded_inference.serving import STRATEGIES, summarize
    from redundancy.coded_inference.serving.metrics import plot_cdfs

    _check_backend(backend, ("sim", *_BACKENDS))
    overrides = {"rate_qps": rate, "queries": queries, "routing": routing, "cancel": cancel}
    overrides |= {"deadline_ms": deadline_ms, "seed": seed}
    serving, models, data = _serving_setup(config, bundle, overrides)
    results = []
    with ui.progress("strategies", total=len(STRATEGIES)) as advance:
        for strategy in STRATEGIES:
            setup = serving.model_copy(update={"strategy": strategy})
            results.append(_run_serving(setup, models, data, backend, max_seconds))
            advance()
    reports = [summarize(r, models.code.deployed, data.y_test) for r in results]
    title = f"{serving.total_instances} instances, {serving.rate_qps:g} qps ({backend})"
    plot = plot_cdfs(results, out / "latency_cdf.png", title)
    _report(serving, backend, results, reports, title, as_json, written=plot)
