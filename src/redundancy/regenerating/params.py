"""Parameters of a product-matrix regenerating code and the capacities they imply.

All sizes are in symbols per stripe (one symbol = one byte of GF(2^8) per stripe); ``beta = 1``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from redundancy.errors import ConfigError, ParameterError, check_range

Kind = Literal["mbr", "msr"]
MAX_NODES = 255  # distinct nonzero evaluation points in GF(2^8)


def mbr_capacity(k: int, d: int, skip: int = 0) -> int:
    """sum_{i=skip+1..k} (d - i + 1): MBR file size (skip=0) or secure size (skip=l)."""
    return sum(d - i + 1 for i in range(skip + 1, k + 1))


@dataclass(frozen=True)
class RegenParams:
    """(n, k, d) of the code, ``l`` eavesdropped nodes to hide from, ``b`` lying nodes to survive.

    MBR needs k <= d < n; MSR needs d >= 2k-2 (d > 2k-2 is built by shortening) and d < n.
    The properties give the per-stripe sizes these imply (``alpha``, ``file_symbols``,
    ``secure_symbols``, ``repair_symbols``, ...).

    Parameters
    ----------
    kind : {"mbr", "msr"}, default "mbr"
        Minimum-bandwidth (each node stores d symbols per stripe) or minimum-storage
        (d - k + 1 symbols) regenerating code.
    n : int, default 6
        Number of nodes, 2..255.
    k : int, default 3
        Any k nodes hold the whole file.
    d : int, default 4
        Helpers contacted to repair one node, each sending one symbol per stripe.
    l : int, default 0
        Nodes an eavesdropper may watch (their storage and repair traffic) and learn nothing,
        0..``max_l``.
    b : int, default 0
        Nodes that may lie (send wrong symbols) and still be corrected, 0..(n - 1 - d) // 2.

    Raises
    ------
    ParameterError
        If a value is out of its range (the message names it and the range).

    Examples
    --------
    >>> params = RegenParams("mbr", n=6, k=3, d=4, l=1)
    >>> params.alpha, params.file_symbols, params.secure_symbols, params.repair_symbols
    (4, 9, 5, 4)
    >>> RegenParams("msr", n=6, k=3, d=4).alpha
    2
    >>> RegenParams("mbr", n=6, k=3, d=6)
    Traceback (most recent call last):
    ...
    redundancy.errors.ParameterError: d=6 is out of range (allowed: 3..5)
    """

    kind: Kind = "mbr"
    n: int = 6
    k: int = 3
    d: int = 4
    l: int = 0  # noqa: E741 - the papers' name for the eavesdropper's node count
    b: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("mbr", "msr"):
            raise ParameterError(f"kind={self.kind!r} is not allowed (choose 'mbr' or 'msr')")
        check_range("n", self.n, 2, MAX_NODES)
        check_range("k", self.k, 2 if self.kind == "msr" else 1, self.n - 1)
        low_d = self.k if self.kind == "mbr" else 2 * self.k - 2
        check_range("d", self.d, max(low_d, 1), self.n - 1)
        if self.kind == "msr":
            check_range("n + shortening", self.n + self.shortening, 2, MAX_NODES)
        check_range("l", self.l, 0, self.max_l)
        check_range("b", self.b, 0, (self.n - 1 - self.d) // 2)

    # ------------------------------------------------------------------ derived sizes
    @property
    def alpha(self) -> int:
        """Symbols stored per node per stripe."""
        return self.d if self.kind == "mbr" else self.d - self.k + 1

    @property
    def shortening(self) -> int:
        """Virtual all-zero nodes added to reach d' = 2k'-2 (MSR with d > 2k-2), else 0."""
        return self.d - 2 * self.k + 2 if self.kind == "msr" else 0

    @property
    def max_l(self) -> int:
        """Largest eavesdropper size that still leaves a nonzero secure file."""
        return self.k - 1 if self.kind == "mbr" else min(self.k - 1, self.alpha - 1)

    @property
    def file_symbols(self) -> int:
        """B: message symbols per stripe without secrecy."""
        if self.kind == "mbr":
            return mbr_capacity(self.k, self.d)
        return self.k * self.alpha

    @property
    def secure_symbols(self) -> int:
        """B_s: secret symbols per stripe, hidden from any l nodes and their repair traffic."""
        if self.kind == "mbr":
            return mbr_capacity(self.k, self.d, self.l)
        return (self.k - self.l) * (self.alpha - self.l)

    @property
    def key_symbols(self) -> int:
        """Random symbols per stripe spent on secrecy (B - B_s)."""
        return self.file_symbols - self.secure_symbols

    @property
    def repair_symbols(self) -> int:
        """Symbols downloaded to repair one node (d helpers x beta = 1)."""
        return self.d

    @property
    def adversary_bound(self) -> int:
        """Capacity bound against b lying nodes when reading only k: sum min(alpha, d-i+1)."""
        return sum(min(self.alpha, self.d - i + 1) for i in range(2 * self.b + 1, self.k + 1))

    @property
    def rs_repair_symbols(self) -> int:
        """RS(n, k) storing the same B symbols: repair reads k shards of B/k = B symbols."""
        return self.file_symbols

    def summary(self) -> dict[str, float | int | str]:
        """Per-stripe figures for `info`, next to RS(n, k) storing the same file."""
        return {
            "kind": self.kind,
            "alpha (stored per node)": self.alpha,
            "B (file symbols)": self.file_symbols,
            "B_s (secure symbols, l)": self.secure_symbols,
            "repair download (d*beta)": self.repair_symbols,
            "RS storage per node (B/k)": round(self.file_symbols / self.k, 3),
            "RS repair download (B)": self.rs_repair_symbols,
            "storage overhead (n*alpha/B_s)": round(self.n * self.alpha / self.secure_symbols, 3),
            "RS storage overhead (n/k)": round(self.n / self.k, 3),
            "adversary bound (k nodes, b)": self.adversary_bound,
        }

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, int | str]:
        """Plain dict (for node-file headers and JSON/YAML configs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: object) -> RegenParams:
        """Build from a mapping, naming unknown fields."""
        if not isinstance(raw, dict):
            raise ConfigError(f"regenerating config must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - {"kind", "n", "k", "d", "l", "b"}
        if unknown:
            raise ConfigError(f"unknown regenerating config field(s) {sorted(unknown)}")
        return cls(**raw)

    @classmethod
    def load(cls, path: Path) -> RegenParams:
        """Read a YAML or JSON config file."""
        import yaml

        try:
            text = Path(path).read_text()
            raw = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        return cls.from_dict(raw)
