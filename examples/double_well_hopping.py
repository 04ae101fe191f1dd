"""Brownian particles hopping between two wells, relaxing to exp(-U/D).

Run ``python examples/double_well_hopping.py`` (about a minute on 2 cores) or with
``--smoke`` for a seconds-long check. Writes ``double_well.h5`` and
``double_well.png`` into ``--out`` (default ``out``).
"""

from __future__ import annotations

import argparse

from ib_physics.experiments import DoubleWellConfig, run_double_well


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny ensemble, short time")
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    config = DoubleWellConfig(particles=2000, duration=1.0) if args.smoke else DoubleWellConfig()
    output = run_double_well(config, out=args.out, progress=not args.smoke)
    frac = output.result.histogram.counts[-1].sum(axis=1)
    print(f"wrote {output.data} and {output.figure}; {frac.sum()} particles histogrammed at the end")


if __name__ == "__main__":
    main()
