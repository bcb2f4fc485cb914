"""Start-up cost of the command line: CPU seconds and heavy imports per command.

Targets (issue 18): `redundancy --help` and `redundancy ec info` at most 0.3 s of CPU each; a small
`ec encode` imports no torch, sklearn, ray or numba. Each command runs `--repeats` times in a fresh
interpreter; the table shows the median CPU time (user + sys of the child) and the heavy libraries
it imported.

    python benchmarks/cli_startup_bench.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HEAVY = ("torch", "ray", "sklearn", "numba", "scipy", "pandas", "xgboost", "lightgbm")
TARGET_CPU_S = 0.3
PROBE = (
    "import sys\nfrom redundancy import cli\ncode = cli.run(sys.argv[1:])\n"
    f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
    "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\nsys.exit(code)\n"
)


def cpu_seconds(argv: list[str], cwd: Path) -> tuple[float, str]:
    """CPU seconds (user + sys) of one CLI run with ``argv``, and the heavy modules it loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=cwd, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    heavy = next(
        (line[6:] for line in result.stderr.splitlines() if line.startswith("HEAVY=")), "?"
    )
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, heavy or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "small.bin").write_bytes(os.urandom(64 * 1024))
        commands = {
            "redundancy --help": ["--help"],
            "redundancy ec info": ["ec", "info"],
            "redundancy ec encode (64 KiB)": ["ec", "encode", "small.bin", "--out", "st"],
        }
        rows = []
        for label, argv in commands.items():
            times = []
            heavy = ""
            for _ in range(args.repeats):
                if (work / "st").exists():
                    subprocess.run(["rm", "-rf", str(work / "st")], check=True)
                seconds, heavy = cpu_seconds(argv, work)
                times.append(seconds)
            rows.append((label, statistics.median(times), heavy))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average: {load}; {args.repeats} runs each, median CPU seconds\n")
    print("| command | CPU s | target | heavy imports |")
    print("|---|---|---|---|")
    for label, seconds, heavy in rows:
        target = f"<= {TARGET_CPU_S}" if "encode" not in label else "no torch/sklearn/ray/numba"
        print(f"| {label} | {seconds:.3f} | {target} | {heavy} |")


if __name__ == "__main__":
    main()
