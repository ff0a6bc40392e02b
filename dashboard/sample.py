"""Make the bundled sample run from a real run directory: its results, figures,
report, config and the small model files the pages use (no logs, no resume state).

    liveenv demo --run-dir runs/sample && python -m dashboard.sample runs/sample

(``make sample-run`` does both.) The dashboard opens on it when no run directory
with results is given.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dashboard.data import SAMPLE_RUN

#: What the pages read, relative to the run directory (globs).
KEEP = (
    "config.json",
    "report.md",
    "results/**/*.csv",
    "results/**/*.md",
    "results/**/*.json",
    "figures/**/*.png",
    "checkpoints/tokenizer.pt",
    "checkpoints/*/policy.npz",
    "checkpoints/reward_model/calibration.md",
)
# Left out to stay small: logs, resume state, the generator's and the reward model's
# training checkpoints (so the Reward weights page cannot run a quick alignment on it).


def export_sample(run_dir: str | Path, dest: str | Path = SAMPLE_RUN) -> list[Path]:
    """Copy the files of :data:`KEEP` from ``run_dir`` into a fresh ``dest``."""
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / "results").is_dir():
        raise FileNotFoundError(f"{run_dir} has no results/: run `liveenv demo` first")
    files = sorted({p for pattern in KEEP for p in run_dir.glob(pattern) if p.is_file()})
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in files:
        target = tmp / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return [dest / p.relative_to(run_dir) for p in files]


if __name__ == "__main__":
    written = export_sample(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else SAMPLE_RUN)
    size = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({size / 1e6:.1f} MB)")
