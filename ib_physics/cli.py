"""The ``ib-physics`` command: argument parsing and progress only, no numerics."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence

import numpy as np

__all__ = ["main", "build_parser"]

#: Experiments, one line each, in the order ``--help`` lists them.
EXPERIMENTS = {
    "bottleneck": "the information-bottleneck study: nets trained on 5, 45 and 85 percent of the data, "
                  "gradient SNR per layer, the information plane",
    "brownian": "where Brownian motion comes from: big disks among small ones, D measured and fed to both engines",
    "dye": "a drop of dye sinking and spreading in a glass: 3D particles vs the axisymmetric density (main job)",
    "layers": "gradient statistics of an ensemble of training runs become a layer-wise Fokker-Planck equation, "
              "tested on held-out runs",
    "particles": "particles hopping in a double well: trails, marginals vs exp(-U/D)",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _out_dir(args: argparse.Namespace) -> Path:
    """The output directory of a run, checked before anything is written: a directory (or a path
    whose nearest existing parent is one) that this process may write into."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, but {out} is a file.")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`--out` {out}: {existing} is not a writable directory.")
    return out


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the output directory for one run: a second run into it is refused (its checkpoints and
    files would be shared) with a one-line message, until this one ends."""
    import fcntl

    created = not out.exists()
    lock = out / ".ib-physics.lock"
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")
    except OSError as exc:
        raise ValueError(f"`--out` {out} cannot be written: {exc.strerror or exc}.") from None
    try:
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"another ib-physics run is writing into {out}; wait for it or choose another "
                                 "`--out`.") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        if created and [p.name for p in out.iterdir()] == [lock.name]:
            # A run that wrote nothing (refused, or interrupted at once) leaves no directory behind.
            lock.unlink()
            out.rmdir()


def _negative_values(argv: Sequence[str]) -> list[str]:
    """``--flag -1e-3`` as ``--flag=-1e-3``: argparse takes a negative number in scientific notation for
    an option, so the value would be missing (the range check then names the flag)."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and token.startswith("-"):
            try:
                float(token)
            except ValueError:
                pass
            else:
                out[-1] = f"{out[-1]}={token}"
                continue
        out.append(token)
    return out


@contextlib.contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Any]:
    """Where the tasks of a run go: None (this process), a local Dask cluster of ``--workers``
    processes (a local process pool without Dask), or the cluster at ``--scheduler``."""
    workers, address = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is not None and address is not None:
        raise ValueError("give `--workers` or `--scheduler`, not both.")
    if workers is None and address is None:
        yield None
        return
    if workers is not None and workers < 1:
        raise ValueError(f"`--workers` must be >= 1, got {workers}.")
    try:
        import distributed
    except ImportError:
        if address is not None:
            raise ValueError("`--scheduler` needs Dask: pip install 'ib_physics[dask]'.") from None
        yield workers  # the built-in local process pool
        return
    import logging

    if address is not None:
        with distributed.Client(address) as client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


def _add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, help="run on a local Dask cluster of N worker processes "
                                                   "(the same numbers as in one process)")
    group.add_argument("--scheduler", help="run on the Dask cluster whose scheduler is at ADDRESS "
                                           "(e.g. tcp://10.0.0.5:8786)", metavar="ADDRESS")


def _dye(args: argparse.Namespace) -> int:
    from .experiments.dye import run_dye
    from .experiments.dye_config import config_from_mapping, config_from_toml

    overrides = {k: v for k, v in (("particles", args.particles), ("seed", args.seed)) if v is not None}
    if args.print_config:
        config = config_from_toml(args.config, overrides) if args.config else config_from_mapping(overrides)
        print(config.to_toml(), end="")
        print("# derived from these settings:")
        for line in config.physics().summary().splitlines():
            print(f"# {line}")
        return 0
    config = config_from_toml(args.config, overrides) if args.config else config_from_mapping(overrides)
    out = _out_dir(args)
    say = (lambda line: None) if args.quiet else print
    with _exclusive(out), _executor(args) as executor:
        output = run_dye(config, out=out, progress=not args.quiet, animation=not args.no_animation, log=say,
                         executor=executor, checkpoint_interval=args.checkpoint_interval)
    print(f"wrote {output.data} and {len(output.figures)} figures in {output.seconds:.0f} s")
    return 0


def _threads(args: argparse.Namespace) -> int | None:
    """``--threads``, checked before anything is written."""
    from .parallel.threads import resolve_threads

    return None if args.threads is None else resolve_threads(args.threads)


def _add_checkpoint_flag(parser: argparse.ArgumentParser, default: float = 60.0) -> None:
    parser.add_argument("--checkpoint-interval", type=float, default=default, dest="checkpoint_interval",
                        metavar="SECONDS", help=f"seconds between checkpoints (default {default:g}): a killed run "
                                                "loses at most this much work; Ctrl-C loses none")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _bottleneck(args: argparse.Namespace) -> int:
    from .experiments.information_bottleneck_plots import plot_study
    from .experiments.information_bottleneck import StudyConfig, run_study

    names = ("fractions", "networks", "epochs", "snapshots", "widths", "activation", "optimizer", "learning_rate",
             "batch_size", "batches", "estimator", "bins", "bin_range", "binning_space", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    config = StudyConfig(**overrides)
    out = _out_dir(args)
    threads = _threads(args)
    say = (lambda line: None) if args.quiet else print
    say(f"{len(config.fractions)} fractions x {config.networks} networks x {config.epochs} epochs; "
        f"{config.estimator_label()}")
    with _exclusive(out), _executor(args) as executor:
        path, runs = run_study(config, out=out, threads=threads, progress=not args.quiet, log=say,
                               executor=executor, checkpoint_interval=args.checkpoint_interval)
    figures = plot_study(path, out)
    for run in runs:
        med = [f"{np.median(col[np.isfinite(col)]):.0f}" if np.any(np.isfinite(col)) else "-"
               for col in run.transitions.T]
        say(f"{100 * run.fraction:.0f} %, {run.stats.grad_std.shape[0]} networks: test accuracy {np.nanmean(run.test_accuracy[:, -1]):.3f}, "
            f"transition epochs per layer (median) {' '.join(med)}")
    print(f"wrote {path} and {len(figures)} figures")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from .experiments.layers import LayersConfig, run_layers
    from .experiments.layers_plots import plot_layers

    names = ("networks", "epochs", "fraction", "widths", "optimizer", "learning_rate", "batch_size", "samplings",
             "traced", "block", "forward_until", "weights_per_layer", "particles", "cells", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.keep_trace:
        overrides["keep_trace"] = True
    config = LayersConfig(**overrides)
    out = _out_dir(args)
    threads = _threads(args)
    say = (lambda line: None) if args.quiet else print
    say(f"{len(config.samplings)} ensembles ({', '.join(config.samplings)}) x {config.networks} networks x "
        f"{config.epochs} epochs from one initialisation")
    with _exclusive(out), _executor(args) as executor:
        path = run_layers(config, out=out, threads=threads, progress=not args.quiet, log=say, executor=executor,
                          checkpoint_interval=args.checkpoint_interval)
    figures = plot_layers(path, out)
    from .experiments.layers import read_layers

    for row in read_layers(path)["summary"]:
        if row["calibration"] == "held-out":
            say(f"{row['sampling']:>10} {row['closure']:>10} {row['layer']:>4} {row['phase']:>9}: "
                f"W1/floor {row['w1_over_floor']:.2f}, variance ratio {row['variance_ratio']:.2f} -> {row['verdict']}")
    print(f"wrote {path} and {len(figures)} figures")
    return 0


def _words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _brownian(args: argparse.Namespace) -> int:
    from .experiments.brownian import config_from_mapping, run_brownian

    names = (("n_big", args.big), ("n_small", args.small), ("duration", args.duration), ("seed", args.seed),
             ("area_fraction", args.area_fraction))
    config = config_from_mapping({k: v for k, v in names if v is not None})
    say = (lambda line: None) if args.quiet else print
    out = _out_dir(args)
    with _exclusive(out):
        data, figures = run_brownian(config, out=out, progress=not args.quiet, log=say)
    print(f"wrote {data} and {len(figures)} figures")
    return 0


def _particles(args: argparse.Namespace) -> int:
    from .experiments.double_well import config_from_mapping, run_double_well

    overrides = {k: v for k, v in (("particles", args.particles), ("seed", args.seed),
                                   ("duration", args.duration)) if v is not None}
    config = config_from_mapping(overrides)
    out = _out_dir(args)
    with _exclusive(out), _executor(args) as executor:
        output = run_double_well(config, out=out, progress=not args.quiet, executor=executor)
    print(f"wrote {output.data} and {output.figure}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import h5py

    path = Path(args.file)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give the HDF5 file an experiment wrote (e.g. {path}/dye.h5).")
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file (plot redraws the files the experiments write).")
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("experiment", "")
    except OSError as exc:
        raise ValueError(f"{path} cannot be read as HDF5 (truncated or damaged?): {exc}") from None
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    out = Path(args.out) if args.out is not None else path.parent
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, but {out} is a file.")
    try:
        drawn = _draw(kind, path, out, args)
    except (KeyError, OSError, TypeError) as exc:  # a group, dataset or setting the figures need is missing
        raise ValueError(f"{path} is an incomplete {kind or 'ib-physics'} file ({exc}); rerun the experiment to "
                         "rewrite it.") from None
    for p in drawn:
        print(f"wrote {p}")
    return 0


def _draw(kind: str, path: Path, out: Path, args: argparse.Namespace) -> list[Path]:
    """Every figure of one experiment's file."""
    if kind == "brownian":
        from .experiments.brownian import plot_brownian

        drawn = plot_brownian(path, out, animation=not args.no_animation)
    elif kind == "bottleneck":
        from .experiments.information_bottleneck_plots import plot_study

        drawn = plot_study(path, out)
    elif kind == "layers":
        from .experiments.layers_plots import plot_layers

        drawn = plot_layers(path, out)
    elif kind == "dye":
        from .experiments.dye_plots import plot_dye

        drawn = plot_dye(path, out, animation=not args.no_animation)
    elif kind == "double_well":
        from .experiments.double_well import plot_double_well

        out.mkdir(parents=True, exist_ok=True)
        drawn = [plot_double_well(path, out / "double_well.png")]
    else:
        raise ValueError(f"{path} holds no figure data this version can draw (experiment {kind!r}).")
    return list(drawn)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ib-physics",
        description="Brownian particles and Fokker-Planck densities: one physics, two views.",
        epilog="Each experiment writes one HDF5 file and its figures; `ib-physics plot FILE` redraws them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    w = sub.add_parser("brownian", help=EXPERIMENTS["brownian"], description=EXPERIMENTS["brownian"]
                       + ". Defaults: 5 big disks (radius 5, mass 25) among 800 small ones, area fraction 0.3, "
                         "periodic box, t = 20000.")
    w.add_argument("--big", type=int, help="big tracer disks (default 5)")
    w.add_argument("--small", type=int, help="small bath disks (default 800)")
    w.add_argument("--area-fraction", type=float, dest="area_fraction", help="area covered by disks (default 0.3)")
    w.add_argument("--duration", type=float, help="simulated time (default 20000)")
    w.add_argument("--seed", type=int, help="seed of the placement and velocities (default 0)")
    w.add_argument("--out", default="out", help="output directory (default ./out)")
    w.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    w.set_defaults(func=_brownian)
    d = sub.add_parser("dye", help=EXPERIMENTS["dye"], description=EXPERIMENTS["dye"])
    d.add_argument("--config", help="TOML file of settings ([glass], [drop], [dye], [water], [run]); "
                                    "see --print-config")
    d.add_argument("--particles", type=int, help="ensemble size N (default 200000)")
    d.add_argument("--seed", type=int, help="seed of the counter-based generator (default 2024)")
    d.add_argument("--out", default="out", help="output directory (default ./out)")
    d.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    d.add_argument("--no-animation", action="store_true", help="skip the GIF/MP4")
    d.add_argument("--print-config", action="store_true", help="print the settings as TOML, with the derived D, v, Péclet number and time scales, and exit")
    _add_cluster_flags(d)
    _add_checkpoint_flag(d)
    d.set_defaults(func=_dye)
    b = sub.add_parser("bottleneck", help=EXPERIMENTS["bottleneck"], description=EXPERIMENTS["bottleneck"]
                       + ". Defaults: 3 fractions x 20 networks x 5000 epochs, Adam (lr 4e-4, batch 512), binning.")
    b.add_argument("--fractions", type=_floats, help="training fractions, e.g. 0.05,0.45,0.85")
    b.add_argument("--networks", type=int, help="networks per fraction (default 20; the paper: 50)")
    b.add_argument("--epochs", type=int, help="epochs (default 5000; the paper: 10000)")
    b.add_argument("--snapshots", type=int, help="log-spaced information-plane epochs (default 50)")
    b.add_argument("--widths", type=_ints, help="layer widths, e.g. 12,10,7,5,4,3,2")
    b.add_argument("--activation", choices=("tanh", "relu"))
    b.add_argument("--optimizer", choices=("adam", "sgd"))
    b.add_argument("--learning-rate", type=float, dest="learning_rate")
    b.add_argument("--batch-size", type=int, dest="batch_size")
    b.add_argument("--batches", choices=("reshuffled", "fixed", "iid", "subset"),
                   help="minibatches: reshuffled each epoch, fixed, i.i.d. rows per step, or a fresh subset per step")
    b.add_argument("--estimator", choices=("binning", "kde"), help="mutual-information estimator (default binning)")
    b.add_argument("--bins", type=int, help="bin edges on [-1, 1] (default 30)")
    b.add_argument("--binning-space", choices=("output", "preactivation"), dest="binning_space")
    b.add_argument("--bin-range", choices=("auto", "fixed", "layer"), dest="bin_range",
                   help="binning edges on [-1, 1] (fixed), between each layer's min and max activity (layer, as "
                        "Saxe et al. for ReLU), or auto: fixed for tanh outputs, layer otherwise (default)")
    b.add_argument("--seed", type=int, help="seed of splits, initial weights and batches (default 0)")
    b.add_argument("--threads", type=int, help="worker threads (default: Numba's setting)")
    b.add_argument("--out", default="out", help="output directory (default ./out); an unfinished study there resumes")
    b.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    _add_cluster_flags(b)
    _add_checkpoint_flag(b)
    b.set_defaults(func=_bottleneck)
    y = sub.add_parser("layers", help=EXPERIMENTS["layers"], description=EXPERIMENTS["layers"]
                       + ". Defaults: 50 networks x 1000 epochs per ensemble (reshuffled and i.i.d. minibatches), "
                         "85 percent of the data, Adam (lr 4e-4, batch 512), 16 traced blocks of 3 epochs.")
    y.add_argument("--networks", type=int, help="runs per ensemble, split in two halves (default 50)")
    y.add_argument("--epochs", type=int, help="epochs (default 1000; the full study: 10000)")
    y.add_argument("--fraction", type=float, help="training fraction (default 0.85)")
    y.add_argument("--widths", type=_ints, help="layer widths, e.g. 12,10,7,5,4,3,2")
    y.add_argument("--optimizer", choices=("adam", "sgd"))
    y.add_argument("--learning-rate", type=float, dest="learning_rate")
    y.add_argument("--batch-size", type=int, dest="batch_size")
    y.add_argument("--samplings", type=_words, help="ensembles' minibatch samplings, e.g. reshuffled,iid")
    y.add_argument("--traced", type=int, help="log-spaced traced blocks (default 16)")
    y.add_argument("--block", type=int, help="consecutive epochs per traced block (default 3)")
    y.add_argument("--forward-until", type=int, dest="forward_until",
                   help="last calibrated epoch of the forward prediction (default epochs / 10)")
    y.add_argument("--weights-per-layer", type=int, dest="weights_per_layer",
                   help="single-weight coordinates per layer besides the norm and the direction (default 2)")
    y.add_argument("--particles", type=int, help="particles per coordinate (default 4000)")
    y.add_argument("--cells", type=int, help="finite volumes per coordinate (default 8000)")
    y.add_argument("--keep-trace", action="store_true", help="keep the per-step weight trace in the file")
    y.add_argument("--seed", type=int, help="seed of split, shared init, batches, halves and particles (default 0)")
    y.add_argument("--threads", type=int, help="worker threads (default: Numba's setting)")
    y.add_argument("--out", default="out", help="output directory (default ./out); an interrupted run resumes")
    y.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    _add_cluster_flags(y)
    _add_checkpoint_flag(y)
    y.set_defaults(func=_layers)
    p = sub.add_parser("particles", help=EXPERIMENTS["particles"], description=EXPERIMENTS["particles"])
    p.add_argument("--particles", type=int, help="ensemble size (default 100000)")
    p.add_argument("--seed", type=int, help="seed of the counter-based generator (default 2024)")
    p.add_argument("--duration", type=float, help="simulated time (default 16)")
    p.add_argument("--out", default="out", help="output directory (default ./out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_cluster_flags(p)
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
    args = parser.parse_args(_negative_values(sys.argv[1:] if argv is None else list(argv)))
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
