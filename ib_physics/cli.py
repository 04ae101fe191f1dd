"""The ``ib-physics`` command: argument parsing and progress only, no numerics."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]


def _particles(args: argparse.Namespace) -> int:
    from .experiments.double_well import config_from_mapping, run_double_well

    overrides = {k: v for k, v in (("particles", args.particles), ("seed", args.seed),
                                   ("duration", args.duration)) if v is not None}
    config = config_from_mapping(overrides)
    output = run_double_well(config, out=args.out, progress=not args.quiet)
    print(f"wrote {output.data} and {output.figure}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import h5py

    from .experiments.double_well import plot_double_well

    with h5py.File(args.file, "r") as f:
        kind = f.attrs.get("experiment", "")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind != "double_well":
        raise ValueError(f"{args.file} holds no figure data this version can draw (experiment {kind!r}).")
    out = args.file.rsplit(".", 1)[0] + ".png" if args.output is None else args.output
    print(f"wrote {plot_double_well(args.file, out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ib-physics",
        description="Brownian particles and Fokker-Planck densities: one physics, two views.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("particles", help="particles hopping in a double well: trails, marginals vs exp(-U/D)")
    p.add_argument("--particles", type=int, help="ensemble size (default 100000)")
    p.add_argument("--seed", type=int, help="seed of the counter-based generator (default 2024)")
    p.add_argument("--duration", type=float, help="simulated time (default 20)")
    p.add_argument("--out", default="out", help="output directory (default ./out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_particles)
    q = sub.add_parser("plot", help="redraw the figures of a saved HDF5 file")
    q.add_argument("file", help="an HDF5 file written by an ib-physics experiment")
    q.add_argument("--output", help="figure path (default: next to the file)")
    q.set_defaults(func=_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        print(f"ib-physics {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
