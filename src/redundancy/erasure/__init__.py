"""Linear erasure codes on byte shards and an erasure-coded file store with per-shard checksums."""

from redundancy.erasure.codes import LRC, LinearCode, ReedSolomon, RepairPlan, parse_code

__all__ = ["LRC", "LinearCode", "ReedSolomon", "RepairPlan", "parse_code"]
