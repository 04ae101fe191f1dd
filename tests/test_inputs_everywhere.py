"""Every public entry point, bad input: a ValueError or TypeError that names the argument, or success.

A property test throws values of every wrong kind (strings, None, booleans, NaN, infinities,
negative, zero, huge, nested, objects) at every argument of the entry points, and the cases an
adversarial review found are pinned one by one.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ib_physics as ib
from ib_physics.collisions import HardDisks, random_disks, record
from ib_physics.flows import Rotation
from ib_physics.learning import Architecture, Trainer, ib_dataset
from ib_physics.potentials import DoubleWell, Harmonic, Tabulated

D1 = ib.Dynamics(potential=Harmonic(1.0), diffusion=0.5)
BOX = ib.Box([-2.0], [2.0])
GRID = ib.Grid(BOX, 24)
P0 = ib.gaussian_density(GRID, [0.0], 0.4)
DATA = ib_dataset()
SMALL = Architecture(widths=(12, 3, 2))
DISKS = random_disks(n_big=1, n_small=30, area_fraction=0.2, seed=0)

BAD = ["1", "abc", None, True, False, float("nan"), float("inf"), -float("inf"), -1, -1.5, 0, 0.0, 10**30, 1e300,
       [], [[1.0, 2.0], [3.0]], {"a": 1}, np.array([1.0, 2.0]), np.array(["x"]), object(), b"1", [True, 2]]


def _simulate(**kw):
    base = dict(dt=0.01, n_particles=16, seed=1, store_positions=False)
    args = {"dynamics": D1, "x0": [0.0], "t_span": (0.0, 0.1)}
    for key in list(kw):
        if key in args:
            args[key] = kw.pop(key)
    return ib.simulate(args["dynamics"], args["x0"], args["t_span"], **{**base, **kw})


def _solve(**kw):
    args = {"p0": P0, "t_span": (0.0, 0.1)}
    for key in list(kw):
        if key in args:
            args[key] = kw.pop(key)
    return ib.solve_fokker_planck(D1, GRID, args["p0"], args["t_span"], **kw)


def _trainer(**kw):
    return Trainer(**{"arch": SMALL, "x": DATA.x[:64], "y": DATA.y[:64], "replicas": 2, **kw})


def _compare_sample(**kw):
    args = {"positions": np.zeros((20, 1)), "p": P0}
    for key in list(kw):
        if key in args:
            args[key] = kw.pop(key)
    return ib.compare_sample(args["positions"], GRID, args["p"], **kw)


ENTRIES = {
    "simulate": (_simulate, ["dt", "n_particles", "t_span", "x0", "t_eval", "seed", "scheme", "store_positions",
                             "histogram_edges", "tracers", "trail_every", "brownian_bridge", "chunk_size", "threads",
                             "checkpoint_interval", "progress", "domain", "particles", "dynamics"]),
    "solve_fokker_planck": (_solve, ["tol", "first_step", "max_step", "t_eval", "linear_solver",
                                     "time_integration", "spatial_order", "progress", "t_span", "p0"]),
    "stationary_density": (lambda **kw: ib.stationary_density(kw.pop("dynamics", D1), GRID, **kw),
                           ["t", "dynamics"]),
    "Dynamics": (lambda **kw: ib.Dynamics(**{"potential": Harmonic(1.0), "diffusion": 0.5, **kw}),
                 ["diffusion", "mobility", "potential_scale", "convention", "potential", "force", "flow"]),
    "Rotation": (lambda **kw: Rotation(**kw), ["angular_velocity", "centre"]),
    "Box": (lambda **kw: ib.Box(**{"lower": 0.0, "upper": 1.0, **kw}), ["lower", "upper", "boundaries"]),
    "Cylinder": (lambda **kw: ib.Cylinder(**{"radius": 1.0, "height": 2.0, **kw}), ["radius", "height"]),
    "Harmonic": (lambda **kw: Harmonic(**{"stiffness": 1.0, **kw}), ["stiffness", "centre"]),
    "DoubleWell": (lambda **kw: DoubleWell(**kw), ["barrier", "minimum", "axis"]),
    "Tabulated": (lambda **kw: Tabulated(**{"values": [0.0, 1.0, 0.0], "lower": [0.0], "upper": [1.0], **kw}),
                  ["values", "lower", "upper"]),
    "Grid": (lambda **kw: ib.Grid(**{"domain": BOX, "shape": 10, **kw}), ["domain", "shape"]),
    "Architecture": (lambda **kw: Architecture(**kw), ["widths", "activation"]),
    "Trainer": (_trainer, ["replicas", "learning_rate", "batch_size", "batches", "optimizer", "beta1", "beta2",
                           "eps", "seed", "shared_initialization", "trace_epochs", "trace_second_batch", "threads",
                           "first_replica", "x", "y", "arch"]),
    "Trainer.run": (lambda **kw: _trainer().run(kw["epochs"]), ["epochs"]),
    "random_disks": (lambda **kw: random_disks(**{"n_big": 1, "n_small": 20, "area_fraction": 0.2, **kw}),
                     ["n_big", "n_small", "radius_big", "radius_small", "mass_big", "area_fraction", "aspect", "kT",
                      "periodic", "seed"]),
    "HardDisks": (lambda **kw: HardDisks(**{"x": DISKS.x, "v": DISKS.v, "radius": DISKS.radius, "mass": DISKS.mass,
                                            "box": DISKS.box, **kw}), ["x", "v", "radius", "mass", "box", "periodic"]),
    "record": (lambda **kw: record(kw.pop("system", DISKS), **{"duration": 2.0, "sample_dt": 1.0, **kw}),
               ["duration", "sample_dt", "tracers", "snapshot_every", "system"]),
    "compare_sample": (_compare_sample, ["positions", "p", "n_started", "mass0"]),
}
PAIRS = [(entry, arg) for entry, (_, args) in ENTRIES.items() for arg in args]


def _call(entry: str, arg: str, value):
    fn, _ = ENTRIES[entry]
    try:
        fn(**{arg: value})
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert arg.split(".")[-1] in message, f"{entry}({arg}={value!r}): the message does not name it: {message}"
        assert "\n" not in message.strip(), f"{entry}({arg}={value!r}): not one line: {message}"


@settings(max_examples=400, deadline=None)
@given(pair=st.sampled_from(PAIRS), value=st.sampled_from(BAD))
def test_every_argument_refuses_bad_values_by_name_or_accepts_them(pair, value):
    entry, arg = pair
    started = time.perf_counter()
    _call(entry, arg, value)
    assert time.perf_counter() - started < 5.0, f"{entry}({arg}={value!r}) took over 5 s"


@pytest.mark.parametrize("value", BAD[:12])
def test_every_simulate_argument_against_each_bad_value(value):
    for arg in ENTRIES["simulate"][1]:
        _call("simulate", arg, value)


ACCEPTED = [
    # NumPy scalars and 0-d arrays are the numbers they hold.
    lambda: _simulate(n_particles=np.array(10), dt=np.array(0.01), t_span=np.array([0.0, 0.1]),
                      tracers=np.array(2), chunk_size=np.array(4), store_positions=np.True_),
    lambda: _solve(tol=np.array(1e-6), max_step=np.array(0.01), t_span=np.array([0.0, 0.1])),
    lambda: ib.stationary_density(D1, GRID, t=np.array(0.0)),
    lambda: ib.Dynamics(potential=Harmonic(1.0), diffusion=0.5, mobility=np.array(1.0),
                        potential_scale=np.array(1.0)),
    lambda: ib.Cylinder(radius=np.array(1.0), height=2.0),
    lambda: DoubleWell(np.array(1.0)),
    lambda: _trainer(replicas=np.array(2), learning_rate=np.array(1e-3)).run(np.array(1)),
    lambda: random_disks(n_big=1, n_small=10, radius_big=np.array(3.0), seed=0),
    lambda: record(DISKS, duration=2.0, sample_dt=np.array(1.0)),
    lambda: ib.Grid(BOX, np.array(10)),
]


@pytest.mark.parametrize("call", ACCEPTED)
def test_numpy_scalars_and_zero_d_arrays_are_accepted(call):
    call()


REFUSED = [
    # (call, exception, words of the message)
    (lambda: ib.Dynamics(diffusion="1"), TypeError, "`diffusion`"),
    (lambda: ib.Dynamics(diffusion=True), TypeError, "`diffusion`"),
    (lambda: ib.Box("0", 1.0), TypeError, "`lower`"),
    (lambda: ib.Box(True, 2.0), TypeError, "`lower`"),
    (lambda: Harmonic("1"), TypeError, "`stiffness`"),
    (lambda: Harmonic(True), TypeError, "`stiffness`"),
    (lambda: DoubleWell(axis=True), TypeError, "`axis`"),
    (lambda: Architecture(widths=(True, 2)), TypeError, "`widths[0]`"),
    (lambda: _simulate(brownian_bridge="no"), TypeError, "`brownian_bridge`"),
    (lambda: _solve(progress="yes"), TypeError, "`progress`"),
    (lambda: random_disks(periodic="yes"), TypeError, "`periodic`"),
    (lambda: HardDisks(x=DISKS.x, v=DISKS.v, radius=DISKS.radius, mass=DISKS.mass, box=DISKS.box, periodic="no"),
     TypeError, "`periodic`"),
    (lambda: record(DISKS, duration=2.0, sample_dt=1.0, tracers=[1.5]), TypeError, "`tracers"),
    (lambda: record(DISKS, duration=2.0, sample_dt=1.0, tracers=[0, 0]), ValueError, "distinct"),
    (lambda: record(DISKS, duration=2.0, sample_dt=1.0, tracers=[0, 5]), ValueError, "one mass"),
    (lambda: ib.Grid(ib.Box(0.0, 1.0), 10**12), ValueError, "TiB"),
    (lambda: _compare_sample(p=-P0), ValueError, "`p`"),
    (lambda: _compare_sample(mass0=-1.0), ValueError, "`mass0`"),
    (lambda: _compare_sample(n_started=2.7), TypeError, "`n_started`"),
    (lambda: _compare_sample(n_started="5"), TypeError, "`n_started`"),
    (lambda: _compare_sample(n_started=True), TypeError, "`n_started`"),
    (lambda: _compare_sample(n_started=5), ValueError, "`n_started`"),
    (lambda: _compare_sample(p=np.full(24, np.nan)), ValueError, "`p`"),
    (lambda: _compare_sample(p=np.zeros(24)), ValueError, "`p`"),
    (lambda: _compare_sample(mass0=0.0), ValueError, "`mass0`"),
    (lambda: _compare_sample(mass0="1"), TypeError, "`mass0`"),
    (lambda: _solve(first_step=float("nan"), time_integration="bdf2"), ValueError, "`first_step`"),
    (lambda: _solve(first_step=-1.0, time_integration="bdf2"), ValueError, "`first_step`"),
    (lambda: _solve(first_step=0.0, time_integration="bdf2"), ValueError, "`first_step`"),
    (lambda: _solve(first_step="abc", time_integration="bdf2"), TypeError, "`first_step`"),
    (lambda: _solve(tol=1e-300, time_integration="bdf2"), ValueError, "`tol`"),
    (lambda: _solve(p0=lambda x: np.ones(3)), ValueError, "`p0`"),
    (lambda: random_disks(n_small=10**6), ValueError, "`n_small`"),
    (lambda: random_disks(n_big=150_000, n_small=100_000), ValueError, "`n_big` + `n_small`"),
    (lambda: random_disks(n_small=10**12), ValueError, "`n_small`"),
    (lambda: random_disks(area_fraction=0.54), ValueError, "`area_fraction`"),
    (lambda: random_disks(area_fraction=None), TypeError, "`area_fraction`"),
    (lambda: _simulate(dt=1e-300), ValueError, "`t_span`"),
    (lambda: _simulate(n_particles=2**32 - 1), ValueError, "GiB"),
    (lambda: _simulate(histogram_edges=[np.linspace(0, 1, 2001)] * 3, dynamics=ib.Dynamics(diffusion=1.0),
                       x0=[0.0, 0.0, 0.0]), ValueError, "`histogram_edges`"),
    (lambda: _simulate(checkpoint="/nonexistent-dir/run.h5"), ValueError, "`checkpoint`"),
    (lambda: _simulate(x0=None), TypeError, "`x0`"),
    (lambda: _simulate(t_eval=["abc"]), TypeError, "`t_eval`"),
    (lambda: Tabulated(["abc", 1.0, 2.0], [0.0], [1.0]), TypeError, "`values`"),
    (lambda: _trainer(x=[["abc"] * 12] * 64), TypeError, "`x`"),
    (lambda: HardDisks(x=[["abc", 1.0]], v=[[0.0, 0.0]], radius=[1.0], mass=[1.0], box=(5.0, 5.0)), TypeError,
     "`x`"),
    (lambda: ib.stationary_density(None, GRID), TypeError, "`dynamics`"),
    (lambda: ib.compare(None, None), TypeError, "`particles`"),
    (lambda: ib.compare_sample(np.zeros((3, 1)), None, P0), TypeError, "`grid`"),
    (lambda: record(None, duration=1.0, sample_dt=0.1), TypeError, "`system`"),
    (lambda: ib.Dynamics(diffusion=1.0, convention=["ito"]), ValueError, "`convention`"),
    (lambda: _trainer(beta1="0.9"), TypeError, "`beta1`"),
    (lambda: _trainer(replicas=2**31 - 1), ValueError, "TiB"),
    (lambda: record(DISKS, duration=1e300, sample_dt=1e-300), ValueError, "`sample_dt`"),
    (lambda: record(DISKS, duration=1e12, sample_dt=1e-3), ValueError, "PiB"),
]


@pytest.mark.parametrize("call,error,words", REFUSED)
def test_the_reviewed_cases_are_refused_by_name_before_any_work(call, error, words):
    started = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
    assert time.perf_counter() - started < 5.0


def test_compare_pairs_each_particle_time_with_the_nearest_density_time():
    parts = ib.simulate(D1, [0.0], (0.0, 0.2), dt=0.01, n_particles=2000, seed=2, t_eval=[0.0, 0.1, 0.2])
    dens = ib.solve_fokker_planck(D1, GRID, ib.gaussian_density(GRID, [0.0], 0.05), (0.0, 0.2),
                                  t_eval=[0.0, 0.1, 0.2])
    cmp = ib.compare(parts, dens)
    assert cmp.t.tolist() == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="`atol`"):
        ib.compare(parts, dens, atol=1e6)


def test_large_hard_disk_systems_check_overlaps_through_cells():
    system = random_disks(n_big=2, n_small=6000, area_fraction=0.3, periodic=True, seed=1)
    started = time.perf_counter()
    again = HardDisks(x=system.x, v=system.v, radius=system.radius, mass=system.mass, box=system.box, periodic=True)
    assert time.perf_counter() - started < 2.0
    assert again.overlap() == 0.0
    x = system.x.copy()
    x[5] = x[4] + np.array([0.5, 0.0])  # two small disks (radius 1) half a radius apart
    with pytest.raises(ValueError, match="overlap"):
        HardDisks(x=x, v=system.v, radius=system.radius, mass=system.mass, box=system.box, periodic=True)
