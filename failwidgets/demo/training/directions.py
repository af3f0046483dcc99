"""Write the demo's shipped whitening statistics: ``python -m failwidgets.demo.training.directions --out
failwidgets/demo/weights``. The runtime loader is :func:`failwidgets.demo.recipes.directions.whitening`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

from failwidgets._io import atomic_write
from failwidgets.demo.recipes.directions import _REPRODUCE, _computed, _file, _fingerprints

__all__ = ["save_whitening", "main"]


def save_whitening(demo: Any, out: str | os.PathLike, *, progress: bool = True) -> Path:
    """Compute (no shipped file used) and write ``directions-<variant>.json`` under ``out``."""
    mean, std = _computed(demo, progress)
    info = {
        "variant": demo.variant,
        "split": "train",
        "what": "per-dimension mean and std of the VL image "
        "embeddings of the training split (Jain et al. 2023 whitening)",
        "fingerprints": _fingerprints(demo),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "reproduce": _REPRODUCE,
    }
    path = Path(out) / _file(demo.variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(info, indent=1) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the whitening statistics of both variants."""
    from failwidgets.demo.loading import VARIANTS, load

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="failwidgets/demo/weights")
    parser.add_argument("--variant", choices=list(VARIANTS), action="append")
    args = parser.parse_args(argv)
    for variant in args.variant or list(VARIANTS):
        print(save_whitening(load(variant), args.out))


if __name__ == "__main__":
    main()
