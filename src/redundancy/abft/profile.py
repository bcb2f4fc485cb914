"""Device profiles: peak FLOP/s, memory bandwidth and per-operation launch cost.

Known GPUs come from vendor datasheets (dense, no sparsity); the local device is measured by a
short micro-benchmark (a square GEMM for compute, a large copy for bandwidth, a one-element add
for the fixed cost of one operation).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from redundancy.errors import ConfigError, ParameterError


class DeviceProfile(BaseModel):
    """What the cost model needs to know about a device.

    Attributes
    ----------
    name : str
        The device's name.
    peak_flops : dict of str to float
        Dense FLOP/s per dtype name (``"float32"`` is the fallback for unlisted dtypes).
    bandwidth : float
        Memory bandwidth, bytes/s (> 0).
    launch_s : float
        Fixed cost of one extra tensor operation, seconds (>= 0).

    Examples
    --------
    >>> t4 = DeviceProfile(
    ...     name="T4", peak_flops={"float32": 8.1e12}, bandwidth=320e9, launch_s=5e-6
    ... )
    >>> t4.ridge("float32")  # flops per byte where the roofline bends
    25.3125
    >>> t4.peak("float16") == t4.peak("float32")  # unlisted dtype: the float32 figure
    True
    """

    name: str
    peak_flops: dict[str, float] = Field(description="dtype name -> dense FLOP/s")
    bandwidth: float = Field(gt=0, description="memory bandwidth, bytes/s")
    launch_s: float = Field(ge=0, description="fixed cost of one extra tensor operation, s")

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype`` (falls back to float32 when the dtype is not listed)."""
        value = self.peak_flops.get(dtype, self.peak_flops.get("float32"))
        if value is None or value <= 0:
            raise ParameterError(f"profile {self.name!r} has no peak_flops for {dtype}")
        return value

    def ridge(self, dtype: str = "float32") -> float:
        """Compute-to-bandwidth ratio (flops per byte) where the roofline bends."""
        return self.peak(dtype) / self.bandwidth


T = 1e12
KNOWN_PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile(
            name="T4",
            peak_flops={"float32": 8.1 * T, "float16": 65 * T},
            bandwidth=320e9,
            launch_s=5e-6,
        ),
        DeviceProfile(
            name="V100",
            peak_flops={"float32": 15.7 * T, "float16": 125 * T},
            bandwidth=900e9,
            launch_s=5e-6,
        ),
        DeviceProfile(
            name="A100",
            peak_flops={"float32": 19.5 * T, "float16": 312 * T, "bfloat16": 312 * T},
            bandwidth=2039e9,
            launch_s=5e-6,
        ),
        DeviceProfile(
            name="H100",
            peak_flops={"float32": 67 * T, "float16": 989 * T, "bfloat16": 989 * T},
            bandwidth=3350e9,
            launch_s=5e-6,
        ),
        DeviceProfile(
            name="L4",
            peak_flops={"float32": 30.3 * T, "float16": 121 * T, "bfloat16": 121 * T},
            bandwidth=300e9,
            launch_s=5e-6,
        ),
    )
}


def _best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_profile(device: str = "cpu", size: int = 384, repeats: int = 5) -> DeviceProfile:
    """Measure this machine: GEMM FLOP/s per dtype, copy bandwidth, one-op latency (< 1 s).

    Parameters
    ----------
    device : {"cpu", "cuda"}, default "cpu"
        Which device to measure.
    size : int, default 384
        Side of the square GEMM timed for each dtype.
    repeats : int, default 5
        Timed repetitions of each measurement (the best one counts).

    Returns
    -------
    DeviceProfile
        Named ``measured-<device>``.

    Raises
    ------
    ParameterError
        If the device is unknown, or CUDA is asked for and torch sees none.

    Examples
    --------
    >>> profile = measure_profile("cpu", size=64, repeats=1)
    >>> profile.name, sorted(profile.peak_flops), profile.bandwidth > 0
    ('measured-cpu', ['bfloat16', 'float16', 'float32'], True)
    """
    import torch

    if device not in ("cpu", "cuda"):
        raise ParameterError(f"device={device!r} is not allowed (cpu, cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device='cuda' requested but torch sees no CUDA device")

    def timed(fn) -> float:
        def run() -> None:
            fn()
            if device == "cuda":
                torch.cuda.synchronize()

        return _best_time(run, repeats)

    peaks = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        a = torch.randn(size, size, device=device).to(dtype)
        peaks[str(dtype).removeprefix("torch.")] = 2.0 * size**3 / timed(lambda a=a: a @ a)
    src = torch.empty(8 * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / timed(lambda: dst.copy_(src))
    one = torch.ones(1, device=device)
    launch = timed(lambda: one.add(one))
    return DeviceProfile(
        name=f"measured-{device}", peak_flops=peaks, bandwidth=bandwidth, launch_s=launch
    )


def get_profile(name: str) -> DeviceProfile:
    """Get a device profile by name: a known GPU, a measured device, or a file.

    Parameters
    ----------
    name : str
        A known GPU (``"T4"``, ``"V100"``, ``"A100"``, ``"H100"``, ``"L4"``; datasheet
        figures), ``"cpu"`` or ``"cuda"`` (measured now), or a ``.json``/``.yaml`` file.

    Returns
    -------
    DeviceProfile
        The profile.

    Raises
    ------
    ParameterError
        If the name is none of these (the message lists them).
    ConfigError
        If the file does not parse or validate.

    Examples
    --------
    >>> a100 = get_profile("A100")
    >>> a100.bandwidth, a100.peak("bfloat16")
    (2039000000000.0, 312000000000000.0)
    """
    if name in KNOWN_PROFILES:
        return KNOWN_PROFILES[name]
    if name in ("cpu", "cuda"):
        return measure_profile(name)
    path = Path(name)
    if path.suffix in (".json", ".yaml", ".yml") and path.is_file():
        return load_profile(path)
    allowed = [*KNOWN_PROFILES, "cpu", "cuda", "<file>.json|yaml"]
    raise ParameterError(f"profile={name!r} is not known (allowed: {allowed})")


def load_profile(path: Path) -> DeviceProfile:
    """Read a profile from JSON or YAML (the fields of :class:`DeviceProfile`).

    Parameters
    ----------
    path : Path
        A ``.json`` file, or YAML for any other suffix.

    Returns
    -------
    DeviceProfile
        The profile.

    Raises
    ------
    ConfigError
        If the file cannot be read, does not parse, or a field is missing or invalid.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "gpu.json"
    >>> _ = path.write_text(get_profile("L4").model_dump_json())
    >>> load_profile(path) == get_profile("L4")
    True
    >>> path.unlink(); path.parent.rmdir()
    """
    import yaml

    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return DeviceProfile.model_validate(data)
    except (OSError, ValueError, ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"profile file {path}: {exc}") from exc
