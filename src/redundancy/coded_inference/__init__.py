"""ParM parity models and learned codes: rebuild unavailable predictions by coded computation.

The public API is imported lazily (torch loads only when a name is first used), so mounting the
``redundancy parm`` command stays cheap::

    from redundancy.coded_inference import ParmConfig, run_parm, load_bundle
    run = run_parm(ParmConfig(k=2, encoder="concatenation"))
    code = run.code                      # ParityCode: encode / parity_output / decode
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_EXPORTS = {
    "DataConfig": "config",
    "OptimConfig": "config",
    "ParmConfig": "config",
    "LearnedCodeConfig": "config",
    "load_config": "config",
    "ImageData": "data",
    "load_data": "data",
    "load_cifar10": "data",
    "load_fashion": "data",
    "fashion_available": "data",
    "from_torch_datasets": "data",
    "build_model": "models",
    "build_cheap_model": "models",
    "load_model": "models",
    "AdditionEncoder": "codes",
    "ConcatenationEncoder": "codes",
    "ParityCode": "codes",
    "make_encoder": "codes",
    "subtraction_decode": "codes",
    "train_parity_model": "training",
    "fit_classifier": "training",
    "LearnedCode": "learned",
    "train_learned_code": "learned",
    "evaluate_learned_code": "learned",
    "CodedAccuracy": "evaluation",
    "evaluate_parity_code": "evaluation",
    "run_parm": "pipeline",
    "run_learned": "pipeline",
    "save_bundle": "pipeline",
    "load_bundle": "pipeline",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
