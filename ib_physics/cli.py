"""The ``ib-physics`` command: argument parsing and progress only, no numerics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Sequence

__all__ = ["main", "build_parser"]

#: Experiments, one line each, in the order ``--help`` lists them.
EXPERIMENTS = {
    "dye": "a drop of dye sinking and spreading in a glass: 3D particles vs the axisymmetric density (main job)",
    "particles": "particles hopping in a double well: trails, marginals vs exp(-U/D)",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _dye(args: argparse.Namespace) -> int:
    from .experiments.dye import run_dye
    from .experiments.dye_config import DyeConfig, config_from_mapping, config_from_toml

    overrides = {k: v for k, v in (("particles", args.particles), ("seed", args.seed)) if v is not None}
    if args.print_config:
        config = config_from_toml(args.config, overrides) if args.config else config_from_mapping(overrides)
        print(config.to_toml(), end="")
        print("# derived from these settings:")
        for line in config.physics().summary().splitlines():
            print(f"# {line}")
        return 0
    config = config_from_toml(args.config, overrides) if args.config else config_from_mapping(overrides)
    if not isinstance(config, DyeConfig):  # pragma: no cover - config_from_* always return one
        raise TypeError("internal: no DyeConfig")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, but {out} is a file.")
    say = (lambda line: None) if args.quiet else print
    output = run_dye(config, out=out, progress=not args.quiet, animation=not args.no_animation, log=say)
    print(f"wrote {output.data} and {len(output.figures)} figures in {output.seconds:.0f} s")
    return 0


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

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with h5py.File(path, "r") as f:
        kind = f.attrs.get("experiment", "")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    out = Path(args.out) if args.out is not None else path.parent
    if kind == "dye":
        from .experiments.dye_plots import plot_dye

        drawn = plot_dye(path, out, animation=not args.no_animation)
    elif kind == "double_well":
        from .experiments.double_well import plot_double_well

        out.mkdir(parents=True, exist_ok=True)
        drawn = [plot_double_well(path, out / "double_well.png")]
    else:
        raise ValueError(f"{path} holds no figure data this version can draw (experiment {kind!r}).")
    for p in drawn:
        print(f"wrote {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ib-physics",
        description="Brownian particles and Fokker-Planck densities: one physics, two views.",
        epilog="Each experiment writes one HDF5 file and its figures; `ib-physics plot FILE` redraws them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    d = sub.add_parser("dye", help=EXPERIMENTS["dye"], description=EXPERIMENTS["dye"])
    d.add_argument("--config", help="TOML file of settings ([glass], [drop], [dye], [water], [run]); "
                                    "see --print-config")
    d.add_argument("--particles", type=int, help="ensemble size N (default 200000)")
    d.add_argument("--seed", type=int, help="seed of the counter-based generator (default 2024)")
    d.add_argument("--out", default="out", help="output directory (default ./out)")
    d.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    d.add_argument("--no-animation", action="store_true", help="skip the GIF/MP4")
    d.add_argument("--print-config", action="store_true", help="print the settings as TOML, with the derived D, v, Péclet number and time scales, and exit")
    d.set_defaults(func=_dye)
    p = sub.add_parser("particles", help=EXPERIMENTS["particles"], description=EXPERIMENTS["particles"])
    p.add_argument("--particles", type=int, help="ensemble size (default 100000)")
    p.add_argument("--seed", type=int, help="seed of the counter-based generator (default 2024)")
    p.add_argument("--duration", type=float, help="simulated time (default 16)")
    p.add_argument("--out", default="out", help="output directory (default ./out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_particles)
    q = sub.add_parser("plot", help="redraw the figures of a saved HDF5 file",
                       description="Redraw every figure of a file written by an experiment.")
    q.add_argument("file", help="an HDF5 file written by an ib-physics experiment")
    q.add_argument("--out", help="directory for the figures (default: the file's directory)")
    q.add_argument("--no-animation", action="store_true", help="skip the GIF/MP4")
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
        message = " ".join(str(exc).split())
        print(f"ib-physics {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
