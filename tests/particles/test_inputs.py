"""Bad input is refused with errors that name the argument (issue: particle engine, 'Bad input')."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ib_physics as ib
from ib_physics.potentials import Harmonic

DYN = ib.Dynamics(diffusion=1.0)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(x0=[np.nan]), ValueError, "x0"),
        (dict(x0=[2.0], domain=ib.Box(0.0, 1.0)), ValueError, "x0"),
        (dict(x0=np.zeros((2, 2, 2))), ValueError, "x0"),
        (dict(x0=np.zeros(4)), ValueError, "x0"),
        (dict(dt=0.0), ValueError, "dt"),
        (dict(dt=-1e-3), ValueError, "dt"),
        (dict(dt=float("nan")), ValueError, "dt"),
        (dict(dt=0.3), ValueError, "t_span"),
        (dict(t_span=(1.0, 0.0)), ValueError, "t_span"),
        (dict(t_span=1.0), TypeError, "t_span"),
        (dict(t_eval=[0.5, 2.0]), ValueError, "t_eval"),
        (dict(t_eval=[0.0005]), ValueError, "t_eval"),
        (dict(t_eval=[0.5, 0.2]), ValueError, "t_eval"),
        (dict(scheme="rk4"), ValueError, "scheme"),
        (dict(n_particles=0), ValueError, "n_particles"),
        (dict(n_particles=2**32), ValueError, "n_particles"),
        (dict(n_particles=2.5), TypeError, "n_particles"),
        (dict(domain=ib.Box([0, 0], [1, 1])), ValueError, "domain"),
        (dict(domain="box"), TypeError, "domain"),
        (dict(histogram_edges=[[0.0, 1.0], [0.0, 1.0]]), ValueError, "histogram_edges"),
        (dict(histogram_edges=[[1.0, 0.0]]), ValueError, "histogram_edges"),
        (dict(tracers=[0, 50]), ValueError, "tracers"),
        (dict(trail_every=0), ValueError, "trail_every"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(threads=0), ValueError, "threads"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(seed=-3), ValueError, "seed"),
        (dict(dynamics="ou"), TypeError, "dynamics"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    args = dict(dynamics=DYN, x0=[0.5], t_span=(0.0, 1.0), dt=1e-3, n_particles=10)
    args.update(kwargs)
    dynamics, x0, t_span = args.pop("dynamics"), args.pop("x0"), args.pop("t_span")
    with pytest.raises(error, match=match):
        ib.simulate(dynamics, x0, t_span, **args)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: ib.Dynamics(diffusion=-1.0), "diffusion"),
        (lambda: ib.Dynamics(diffusion=[1.0, float("inf")]), "diffusion"),
        (lambda: ib.Dynamics(mobility=0.0), "mobility"),
        (lambda: ib.Dynamics(convention="klimontovich"), "convention"),
        (lambda: ib.Dynamics(potential=3.0), "potential"),
        (lambda: ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=[1.0, 1.0, 1.0]), "dimensions"),
        (lambda: ib.Dynamics(potential_scale=-1.0), "potential_scale"),
        (lambda: ib.Schedule([1.0, 0.5], [1.0, 2.0, 3.0]), "times"),
        (lambda: ib.Schedule([1.0], [1.0]), "values"),
        (lambda: ib.DiffusionField([1.0, -1.0, 1.0], 0.0, 1.0), "values"),
        (lambda: Harmonic(-1.0), "stiffness"),
        (lambda: ib.Box(1.0, 0.0), "upper"),
        (lambda: ib.Box(0.0, 1.0, boundaries="sticky"), "boundaries"),
        (lambda: ib.Box([0, 0], [1, 1], boundaries=[("periodic", "reflecting"), "periodic"]), "periodic"),
        (lambda: ib.Cylinder(radius=-1.0, height=1.0), "radius"),
        (lambda: ib.Cylinder(radius=1.0, height=1.0, top="periodic"), "top"),
    ],
)
def test_bad_physics_objects_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_sra1_refuses_position_dependent_noise():
    field = ib.DiffusionField.from_function(lambda x: 1 + 0 * x, 0, 1, nodes=5)
    with pytest.raises(ValueError, match="scheme"):
        ib.simulate(ib.Dynamics(diffusion=field), 0.5, (0, 1), dt=0.1, n_particles=2, scheme="sra1")


def test_stiff_step_warns_with_the_number():
    with pytest.warns(ib.StabilityWarning, match=r"stiffness x dt = 1\.5"):
        ib.simulate(ib.Dynamics(potential=Harmonic(15.0)), 0.0, (0, 1), dt=0.1, n_particles=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ib.simulate(ib.Dynamics(potential=Harmonic(5.0)), 0.0, (0, 1), dt=0.1, n_particles=2)


def test_oversized_storage_is_refused_before_allocating():
    with pytest.raises(ValueError, match="store_positions"):
        ib.simulate(DYN, 0.0, (0, 1), dt=1e-3, n_particles=10**7, t_eval=np.linspace(0, 1, 101))
