r"""Gradient statistics become drift and diffusion: one 1D :class:`~ib_physics.Dynamics` per
layer coordinate (PHYSICS.md §5). The adapter builds dynamics; it runs no engine.

Input: a :class:`~ib_physics.learning.records.GradientStatistics` with a weight trace
(weights, per-step gradients and applied updates of R replicas at the traced epochs).
For a coordinate X of a layer (a single weight, the layer norm ρ = ‖W‖_F or the
displacement along the ensemble's mean-update direction û) every traced step b of every
replica r gives a pair (X_rb, ΔX_rb): the coordinate before the step and its increment,
taken from the applied updates (Kramers–Moyal, ``source="updates"``: any optimiser, Adam
included) or from the gradients as plain SGD would apply them (``source="gradients"``:
ΔW = −η g). Per traced epoch (a piece of a piecewise-constant schedule), per step:

.. math::

    \bar a = \langle \Delta X \rangle, \qquad
    \Delta\tilde X_{rb} = -k\,\tilde X_{rb} + \epsilon_{rb}, \qquad
    D = \operatorname{Var}(\epsilon) / 2,

where the tilde is the deviation from the replicas' mean at the same step (``noise=
"ensemble"``: the regression of the replicas' increments on their displacements gives the
stiffness k, its residual the noise given the state), or, for a single run, the deviation
from the run's own mean over the epoch's steps (``noise="batches"``: the convention of
Saxe et al.'s ibsgd; no stiffness). With a second minibatch gradient g' recorded at every
traced step (``trace_second_batch``) ``noise="pairs"`` takes ε = −η (g − g')/√2 instead:
its variance is η² Cov_b g given the weights, whatever the ensemble's spread. Closures:

* ``"mean-field"``: a(t) = ā(t), the coefficients measured along the ensemble-mean
  trajectory, independent of position;
* ``"linear"``: a(x, t) = ā(t) − k(t) (x − m(t)), m the ensemble mean: a restoring force,
  so that the predicted spread can saturate as real runs do. The stiffness is the
  regression slope over the ensemble (not a Hessian–vector product: the regression needs
  no model access, works from any recorder and measures the response of the optimiser's
  actual step, Adam's preconditioning included). Negative slopes are clipped to 0 and counted.

With ``discrete_correction`` (linear closure) each piece's Ornstein–Uhlenbeck process is
matched to the discrete map x' = (1 − k) x + ξ exactly: rate κ = −ln(1 − k) and
D' = 2κ D / (k (2 − k)), so that means decay as (1 − k)^n and the stationary variance is
the map's 2D / (k (2 − k)) rather than the SDE's D / k (their ratio 2/(2 − ηh) for SGD on a
quadratic of curvature h).

Time units (Δt of one step): ``"step"`` 1; ``"sme"`` η (t = kη, the stochastic modified
equation); ``"epoch"`` 1/n_b. Drift and stiffness scale as 1/Δt and diffusion as 1/Δt, which
reproduces the table of PHYSICS.md §5. On the epoch scale the steps of an epoch are taken as
independent: with reshuffled epochs the true epoch-scale diffusion is smaller (the batches
of one epoch are anti-correlated), which the results say in ``notes``.

The layer norm obeys (Itô) dρ = [ŵ·a + (tr D − ŵᵀDŵ)/ρ] dt + sqrt(2 ŵᵀDŵ) dB. Its mean-field
model keeps the noise-driven growth c/ρ, c = tr D − ŵᵀDŵ measured from the layer's noise
covariance, as a genuine 1/ρ force (a tabulated −log ρ potential scaled by c(t)), plus a
force f(t) that makes the mean drift equal the measured one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ._validation import check_finite_positive, check_int_range
from .dynamics import Dynamics, Schedule
from .learning.records import GradientStatistics
from .potentials import Flat, Harmonic, Tabulated

__all__ = ["TIME_UNITS", "SOURCES", "CLOSURES", "NOISE_ESTIMATES", "FRAMES", "CoordinateModel", "LayerwiseDynamics",
           "layer_dynamics", "isotropic_coefficients", "step_duration", "consecutive_pieces"]

TIME_UNITS = ("step", "sme", "epoch")
SOURCES = ("updates", "gradients")
CLOSURES = ("mean-field", "linear")
NOISE_ESTIMATES = ("ensemble", "batches", "pairs")
FRAMES = ("absolute", "centred")
#: Smallest diffusion handed to a Dynamics, relative to the coordinate's largest: a piece without
#: positive noise (one batch holding the whole training set; a Green–Kubo sum that cancels under
#: reshuffling) would otherwise be refused, and with a restoring force a vanishing D collapses the
#: density below any grid's resolution (cell Péclet numbers of 1e5 and more).
#: The measured values stay in ``CoordinateModel.measured_diffusion``.
_DIFFUSION_FLOOR = 1e-3
#: Nodes of the tabulated -log(rho) potential of the norm coordinate.
_LOG_NODES = 4001


def step_duration(statistics: GradientStatistics, time_unit: str) -> float:
    """Δt of one optimiser step in ``time_unit``: 1 (step), η (sme), 1/n_b (epoch)."""
    _choice(time_unit, TIME_UNITS, "time_unit")
    if time_unit == "step":
        return 1.0
    if time_unit == "sme":
        return float(statistics.learning_rate)
    return 1.0 / statistics.steps_per_epoch


def isotropic_coefficients(statistics: GradientStatistics, *, time_unit: str = "epoch",
                           source: str = "gradients") -> tuple[np.ndarray, np.ndarray]:
    r"""Per replica, epoch and layer: the drift magnitude |a| and the isotropic scalar diffusion.

    From the per-epoch norms alone (no trace): with ``source="gradients"``
    |a| = η mean_l / Δt and D = η² std_l² / (2 d_l Δt); with ``"updates"`` the update norms
    replace η mean_l and η std_l. The rows of PHYSICS.md §5's table.

    Returns
    -------
    drift, diffusion : numpy.ndarray, shape (R, E, L)
    """
    if not isinstance(statistics, GradientStatistics):
        raise TypeError(f"`statistics` must be a GradientStatistics, got {type(statistics).__name__}.")
    _choice(source, SOURCES, "source")
    dt = step_duration(statistics, time_unit)
    s = statistics.stats
    eta = statistics.learning_rate
    mean, std = ((eta * np.asarray(s.grad_mean), eta * np.asarray(s.grad_std)) if source == "gradients"
                 else (np.asarray(s.update_mean), np.asarray(s.update_std)))
    sizes = np.asarray(statistics.layer_sizes, dtype=float)
    return mean / dt, std**2 / (2.0 * sizes * dt)


@dataclass(frozen=True, eq=False)
class CoordinateModel:
    """One layer coordinate's calibrated coefficients and its 1D Dynamics.

    Piece j holds from the start of traced epoch ``epochs[j]`` to the start of the next
    (the last forever). All coefficients are in the model's time unit.

    Attributes
    ----------
    layer : str
    kind : {"weight", "norm", "direction"}
    name : str
        E.g. ``"W2[13]"``, ``"|W2|"``, ``"u.W2"``.
    dynamics : Dynamics
        1D drift and diffusion (piecewise-constant schedules).
    epochs : numpy.ndarray of int, shape (S,)
        The calibrated traced epochs.
    starts : numpy.ndarray, shape (S,)
        Start time of each piece.
    drift, stiffness, diffusion : numpy.ndarray, shape (S,)
        ā, k (0 under the mean-field closure) and D of each piece as used by ``dynamics``.
    measured_stiffness : numpy.ndarray, shape (S,)
        The regression slope before clipping (NaN without an ensemble).
    measured_diffusion : numpy.ndarray, shape (S,)
        The noise estimate before the floor (may be <= 0 for a Green–Kubo sum).
    centre, spread : numpy.ndarray, shape (S,)
        Ensemble mean and variance of the coordinate at each piece's start.
    noise_growth : numpy.ndarray, shape (S,)
        c = tr D − ŵᵀDŵ of the norm coordinate (zeros otherwise).
    kurtosis : numpy.ndarray, shape (S,)
        Excess kurtosis of the noise residuals (0 for Gaussian noise).
    peclet : numpy.ndarray, shape (S,)
        ā² Δt / D over one step: 2 (mean increment / noise std)².
    lower, upper : float
        An interval that holds the ensemble and the mean-field spread with room to spare
        (the density engine's box).
    direction : numpy.ndarray or None
        û (d_l,) of a direction coordinate; the weight index of a weight coordinate in ``index``.
    frame : {"absolute", "centred"}
        What ``dynamics`` describes: the coordinate, or its deviation from the ensemble mean.
    """

    layer: str
    kind: str
    name: str
    dynamics: Dynamics
    epochs: np.ndarray
    starts: np.ndarray
    drift: np.ndarray
    stiffness: np.ndarray
    diffusion: np.ndarray
    measured_stiffness: np.ndarray
    measured_diffusion: np.ndarray
    centre: np.ndarray
    spread: np.ndarray
    noise_growth: np.ndarray
    kurtosis: np.ndarray
    peclet: np.ndarray
    lower: float
    upper: float
    index: int | None = None
    direction: np.ndarray | None = None
    frame: str = "absolute"

    @property
    def t0(self) -> float:
        """Start of the first piece: where the prediction starts from the ensemble."""
        return float(self.starts[0])

    def values(self, weights: np.ndarray, layer_slice: slice) -> np.ndarray:
        """This coordinate (absolute, whatever the frame) of weight rows (..., W) (all layers'
        weights, trace layout)."""
        w = np.asarray(weights)[..., layer_slice]
        if self.kind == "weight":
            return w[..., self.index]
        if self.kind == "norm":
            return np.linalg.norm(w, axis=-1)
        return w @ self.direction


@dataclass(frozen=True, eq=False)
class LayerwiseDynamics:
    """What :func:`layer_dynamics` built: one model per coordinate and the diagnostics.

    Attributes
    ----------
    coordinates : tuple of CoordinateModel
    settings : dict
        time_unit, source, closure, sampling, noise, discrete_correction, calibrated epochs,
        replicas, step duration.
    epochs : numpy.ndarray, shape (S,)
        The traced epochs used.
    snr : numpy.ndarray, shape (S, L)
        Tishby's ‖mean g‖ / sqrt(tr Cov g) from the trace (replica mean).
    direction_peclet, isotropic_peclet : numpy.ndarray, shape (S, L)
        Pe along the epoch's own mean-update direction, 2 ā_û² / Var_û per step, and what it
        would be with isotropic noise of the same trace, 2 d_l |ā|² / tr Cov (= 2 d_l SNR²
        of the updates). Their ratio exceeds 1 when the noise avoids the drift direction.
    cross_layer : numpy.ndarray, shape (S, L, L)
        ‖C_lm‖_F / sqrt(‖C_ll‖_F ‖C_mm‖_F) of the noise covariance blocks (diagonal 1).
    cross_layer_floor : numpy.ndarray, shape (S, L, L)
        The same ratio expected from sampling alone for independent layers.
    source_ratio : dict of str to numpy.ndarray (S,)
        Per coordinate name, drift and diffusion from updates over those from gradients
        (``"<name>:drift"``, ``"<name>:diffusion"``); 1 for plain SGD.
    notes : tuple of str
    """

    coordinates: tuple[CoordinateModel, ...]
    settings: dict[str, Any]
    epochs: np.ndarray
    snr: np.ndarray
    direction_peclet: np.ndarray
    isotropic_peclet: np.ndarray
    cross_layer: np.ndarray
    cross_layer_floor: np.ndarray
    source_ratio: dict[str, np.ndarray] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def coordinate(self, name: str) -> CoordinateModel:
        """The model of the coordinate called ``name``."""
        for c in self.coordinates:
            if c.name == name:
                return c
        raise ValueError(f"no coordinate {name!r}; have {[c.name for c in self.coordinates]}.")

    def of_layer(self, layer: str) -> tuple[CoordinateModel, ...]:
        return tuple(c for c in self.coordinates if c.layer == layer)


def _choice(value: Any, allowed: Sequence[str], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"`{name}` must be one of {tuple(allowed)}, got {value!r}.")
    return value


def _parse_coordinates(coordinates: Any, statistics: GradientStatistics,
                       layers: Sequence[str]) -> list[tuple[str, str, int | None]]:
    """(layer, kind, weight index) triples from the ``coordinates`` argument.

    Accepted: a kind or a sequence of kinds ("norm", "direction", "weights": every weight),
    or a mapping kind -> for "weights" a mapping layer -> weight indices.
    """
    if isinstance(coordinates, str):
        coordinates = (coordinates,)
    if isinstance(coordinates, Mapping):
        items = list(coordinates.items())
    else:
        try:
            items = [(c, None) for c in coordinates]
        except TypeError:
            raise TypeError(f"`coordinates` must be a kind, a sequence of kinds or a mapping, "
                            f"got {coordinates!r}.") from None
    out: list[tuple[str, str, int | None]] = []
    for kind, detail in items:
        _choice(kind, ("weights", "norm", "direction"), "coordinates")
        if kind != "weights":
            out += [(layer, kind, None) for layer in layers]
            continue
        chosen: Mapping[str, Any] = detail if detail is not None else {
            layer: range(statistics.layer_sizes[statistics.layer_index(layer)]) for layer in layers}
        if not isinstance(chosen, Mapping):
            raise TypeError("`coordinates['weights']` must map layer names to weight indices.")
        for layer, idx in chosen.items():
            size = statistics.layer_sizes[statistics.layer_index(layer)]
            for i in np.atleast_1d(np.asarray(list(idx) if not np.isscalar(idx) else [idx])):
                if not np.issubdtype(np.asarray(i).dtype, np.integer):
                    raise TypeError(f"weight indices of layer {layer!r} must be integers, got {i!r}.")
                out.append((layer, "weight", check_int_range(int(i), f"weight index of {layer}", 0, size - 1)))
    if not out:
        raise ValueError("`coordinates` selects nothing.")
    return out


def _fit(x: np.ndarray, dx: np.ndarray, noise: str, lags: int = 0,
         pair: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per coordinate: mean increment, regression slope, noise variance and kurtosis.

    ``x`` and ``dx``: (R, n, C) coordinate before each of n consecutive steps and its increment.
    With ``lags`` > 0 the noise variance is the Green–Kubo sum C(0) + 2 Σ_{k<=lags} C(k) of the
    residuals' autocovariance (what a long run of correlated steps diffuses, e.g. under momentum),
    and the residuals are deviations from the replicas' mean only (see below); the slope is still
    reported, but momentum biases it towards negative stiffness.

    ``noise="pairs"``: ``pair`` (R, n, C) holds −η (g − g')/√2 of two independent minibatches
    at the same weights, whose second moment is the minibatch noise given the state; its
    excess kurtosis is half a single batch's, hence the factor 2 below.
    """
    R, n_b, _ = x.shape
    drift = dx.mean(axis=(0, 1))
    if noise == "pairs":
        stiffness = np.full(drift.shape, np.nan)
        if R >= 3:
            xt = x - x.mean(axis=0)
            sxx = (xt * xt).sum(axis=(0, 1))
            sxy = (xt * (dx - dx.mean(axis=0))).sum(axis=(0, 1))
            with np.errstate(divide="ignore", invalid="ignore"):
                stiffness = -np.where(sxx > 0, sxy / sxx, 0.0)
        m2 = (pair * pair).mean(axis=(0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            kurt = np.where(m2 > 0, 2.0 * ((pair**4).mean(axis=(0, 1)) / m2**2 - 3.0), 0.0)
        return {"drift": drift, "stiffness": stiffness, "noise": m2, "kurtosis": kurt, "resid": pair}
    if noise == "ensemble":
        xt = x - x.mean(axis=0)
        dxt = dx - dx.mean(axis=0)
        sxx = (xt * xt).sum(axis=(0, 1))
        sxy = (xt * dxt).sum(axis=(0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(sxx > 0, sxy / sxx, 0.0)
        # With lags the increments are correlated in time, and so are positions and later increments:
        # the regression would mistake that memory for an anti-restoring force, so the noise is taken
        # about the replicas' mean alone.
        resid = dxt - slope * xt if lags == 0 else dxt
        dof = n_b * (R - 1) - (1 if lags == 0 else 0)
        stiffness = -slope
    else:
        resid = dx - dx.mean(axis=1, keepdims=True)
        dof = R * (n_b - 1)
        stiffness = np.full(drift.shape, np.nan)
    m2 = (resid * resid).sum(axis=(0, 1)) / dof
    scale = dof / (R * n_b)  # the same degrees-of-freedom correction for every lag
    for k in range(1, lags + 1):
        m2 = m2 + 2.0 * (resid[:, k:] * resid[:, :-k]).mean(axis=(0, 1)) / scale
    m4 = (resid**4).mean(axis=(0, 1))
    second = (resid * resid).mean(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(second > 0, m4 / second**2 - 3.0, 0.0)
    return {"drift": drift, "stiffness": stiffness, "noise": m2, "kurtosis": kurt, "resid": resid}


def consecutive_pieces(epochs: np.ndarray, longest: int | None = None) -> list[np.ndarray]:
    """Indices into ``epochs`` of the schedules' pieces: runs of consecutive epochs, cut into pieces of
    at most ``longest`` epochs."""
    cuts = np.flatnonzero(np.diff(epochs) != 1) + 1
    runs = [np.asarray(b) for b in np.split(np.arange(epochs.size), cuts)]
    if longest is None:
        return runs
    return [run[i:i + longest] for run in runs for i in range(0, run.size, longest)]


def _noise_vectors(dw: np.ndarray, noise: str, pair: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Residual weight increments (R, n_b, W) whose covariance is the noise, and their dof."""
    R, n_b, _ = dw.shape
    if noise == "pairs":
        return pair, R * n_b
    if noise == "ensemble":
        return dw - dw.mean(axis=0), n_b * (R - 1)
    return dw - dw.mean(axis=1, keepdims=True), R * (n_b - 1)


def _corrected(k: np.ndarray, d: np.ndarray, epochs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step stiffness and diffusion of the OU process that samples the map x' = (1-k)x + ξ exactly."""
    bad = (k >= 1.0)
    if np.any(bad):
        j = int(np.argmax(bad))
        raise ValueError(f"`discrete_correction` needs a per-step stiffness ηh < 1 (a map that does not "
                         f"overshoot); traced epoch {int(epochs[j])} has {k[j]:.3g}.")
    small = np.abs(k) < 1e-8
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(small, k + k * k / 2.0, -np.log1p(-k))
        ratio = np.where(small, 1.0 + k / 2.0, kappa / k)
    return kappa, d * ratio * 2.0 / (2.0 - k)


def layer_dynamics(statistics: GradientStatistics, *, coordinates: Any = ("norm", "direction"),
                   layers: Sequence[str] | None = None, time_unit: str = "epoch", source: str = "updates",
                   closure: str = "mean-field", sampling: str | None = None, noise: str | None = None,
                   discrete_correction: bool = False, until: int | None = None,
                   replicas: Any = None, horizon: float | None = None, frame: str = "absolute",
                   noise_lags: int | None = None, piece_epochs: int | None = None) -> LayerwiseDynamics:
    """Calibrate one 1D Dynamics per layer coordinate on a weight trace.

    Parameters
    ----------
    statistics : GradientStatistics
        Must hold a trace (``trace_epochs`` of the trainer or the recorder).
    coordinates : str, sequence or mapping
        ``"norm"`` (ρ = ‖W‖_F), ``"direction"`` (û·W, û the unit mean displacement of the
        ensemble over the calibrated epochs), ``"weights"`` (every weight of the layers), or
        ``{"weights": {"W1": [0, 5]}, "norm": None}`` for chosen weights.
    layers : str or sequence of str, optional
        Layers for "norm", "direction" and "weights" without indices; default all.
    time_unit : {"step", "sme", "epoch"}
    source : {"updates", "gradients"}
        Kramers–Moyal on the applied updates, or −η g (the SGD step) from the gradients.
    closure : {"mean-field", "linear"}
    sampling : str, optional
        The minibatch sampling the caller assumes; must equal the statistics' own.
    noise : {"ensemble", "batches", "pairs"}, optional
        How the noise given the state is estimated: "ensemble", the residual of the replicas'
        increments about their mean (after the linear regression on their displacement);
        "batches", one run's steps about their mean over the piece; "pairs", two independent
        minibatch gradients at the same weights (a trace recorded with ``trace_second_batch``):
        Cov[−η(g − g')]/2 = η² Cov_b g exactly, free of the ensemble's spread and of any
        regression. "pairs" describes the SGD step −ηg: with ``source="updates"`` it needs
        an SGD run. Default "ensemble" with >= 3 replicas, else "batches".
    discrete_correction : bool
        Match each piece to the discrete map (linear closure only).
    until : int, optional
        Calibrate on traced epochs <= ``until`` only; later times keep the last piece
        (forward prediction).
    replicas : indices or mask, optional
        Calibrate on these replicas only (held-out tests).
    noise_lags : int, optional
        Autocovariance lags (in steps) added to the noise variance, Green–Kubo style (default 0:
        Kramers–Moyal on single steps). Momentum makes successive updates correlated (Adam with
        β1 = 0.9 diffuses (1 + β1)/(1 − β1) = 19 times what single white-noise steps suggest);
        consecutive traced epochs are joined into one piece, and a piece of n steps sums at most
        n − 1 lags (the results' ``notes`` name the pieces that were too short).
    piece_epochs : int, optional
        Longest piece in epochs: runs of consecutive traced epochs are cut into pieces of at most
        this many epochs (default: a whole run is one piece).
    frame : {"absolute", "centred"}
        ``"absolute"``: the coordinate itself. ``"centred"``: its deviation from the ensemble
        mean at the same step, whose law is the ensemble's spread and shape (drift 0 under the
        mean-field closure, −k x under the linear one; the norm's noise-driven growth c/ρ
        enters linearised, as the restoring rate mean(c/ρ²)). In the drift phase the mean moves
        far more than the ensemble spreads, and only the centred frame lets a grid resolve both.
    horizon : float, optional
        Last time (in ``time_unit``) the models will be solved to; the suggested intervals
        ``lower``/``upper`` cover the mean-field spread until then. Default: one epoch after
        the last calibrated piece's start.

    Returns
    -------
    LayerwiseDynamics
    """
    if not isinstance(statistics, GradientStatistics):
        raise TypeError(f"`statistics` must be a GradientStatistics, got {type(statistics).__name__}.")
    _choice(time_unit, TIME_UNITS, "time_unit")
    _choice(source, SOURCES, "source")
    _choice(closure, CLOSURES, "closure")
    _choice(frame, FRAMES, "frame")
    if sampling is not None and sampling != statistics.sampling:
        raise ValueError(f"`sampling`={sampling!r} does not match the statistics, which were recorded with "
                         f"{statistics.sampling!r} minibatches.")
    if not isinstance(discrete_correction, (bool, np.bool_)):
        raise TypeError(f"`discrete_correction` must be True or False, got {discrete_correction!r}.")
    if discrete_correction and closure != "linear":
        raise ValueError("`discrete_correction` needs closure='linear' (it corrects a restoring force).")
    if horizon is not None:
        check_finite_positive(horizon, "horizon", allow_zero=True)
    if replicas is not None:
        statistics = statistics.select_replicas(replicas)
    if statistics.trace is None:
        raise ValueError("`statistics` holds no weight trace: record with `trace_epochs`.")
    R = statistics.replicas
    if noise is None:
        noise = "ensemble" if R >= 3 else "batches"
    _choice(noise, NOISE_ESTIMATES, "noise")
    if noise == "ensemble" and R < 3:
        raise ValueError(f"`noise`='ensemble' needs >= 3 replicas, got {R}.")
    if noise == "batches" and statistics.steps_per_epoch < 2:
        raise ValueError("`noise`='batches' needs >= 2 steps per epoch.")
    if noise == "pairs":
        if statistics.trace.second_gradients is None:
            raise ValueError("`noise`='pairs' needs second-minibatch gradients in the trace: record with "
                             "`trace_second_batch=True`.")
        if source == "updates" and statistics.optimizer.lower() != "sgd":
            raise ValueError(f"`noise`='pairs' gives the noise of the SGD step −ηg; the updates of a "
                             f"{statistics.optimizer!r} run are not that step: use source='gradients' or "
                             "noise='ensemble'.")
        if noise_lags:
            raise ValueError("`noise_lags` sums the memory of consecutive updates; paired minibatches have none "
                             "(use noise='ensemble' for momentum).")
    if closure == "linear" and (noise == "batches" or R < 3):
        raise ValueError("closure='linear' estimates its stiffness across replicas: it needs >= 3 replicas and "
                         "noise='ensemble' or 'pairs'.")
    if isinstance(layers, str):
        layers = (layers,)
    layer_names = tuple(statistics.layer_names) if layers is None else tuple(layers)
    for layer in layer_names:
        statistics.layer_index(layer)
    chosen = _parse_coordinates(coordinates, statistics, layer_names)
    kinds = {kind for _, kind, _ in chosen}
    if R > 1 and not statistics.shared_initialization and kinds & {"weight", "direction"}:
        raise ValueError("`coordinates` with single weights or directions compare replicas weight by weight, "
                         "which needs a shared initialisation (hidden units of independent inits are permuted); "
                         "use 'norm' or record with shared_initialization=True.")
    trace = statistics.trace
    keep = np.ones(trace.epochs.size, bool) if until is None else trace.epochs <= check_int_range(until, "until", 1)
    if not np.any(keep):
        raise ValueError(f"`until`={until} precedes the first traced epoch {int(trace.epochs[0])}.")
    eta, n_b = statistics.learning_rate, statistics.steps_per_epoch
    traced = trace.epochs[keep]
    longest = None if piece_epochs is None else check_int_range(piece_epochs, "piece_epochs", 1)
    blocks = consecutive_pieces(traced, longest)
    epochs = np.array([traced[b[0]] for b in blocks], dtype=np.int64)
    lags = 0 if noise_lags is None else check_int_range(noise_lags, "noise_lags", 0)
    weights_all, updates_all, grads_all = trace.weights[:, keep], trace.updates[:, keep], trace.gradients[:, keep]
    # Weights before every traced step: the epoch's start plus the earlier steps' applied updates.
    before_all = weights_all[:, :, None, :] + np.concatenate(
        [np.zeros_like(updates_all[:, :, :1]), np.cumsum(updates_all[:, :, :-1], axis=2)], axis=2)
    W = weights_all.shape[-1]

    def joined(arr: np.ndarray, b: np.ndarray) -> np.ndarray:
        return arr[:, b].reshape(R, b.size * n_b, W)  # consecutive epochs: consecutive steps

    before = [joined(before_all, b) for b in blocks]
    updates = [joined(updates_all, b) for b in blocks]
    grads = [joined(grads_all, b) for b in blocks]
    increments = updates if source == "updates" else [-eta * g for g in grads]
    pairs = None
    if noise == "pairs":
        second_all = trace.second_gradients[:, keep]
        pairs = [-eta * (g - joined(second_all, b)) / np.sqrt(2.0) for g, b in zip(grads, blocks)]
    dt = step_duration(statistics, time_unit)
    starts = (epochs - 1) * n_b * dt
    S, L = epochs.size, statistics.n_layers
    notes = []
    short = [int(epochs[j]) for j, b in enumerate(blocks) if b.size * n_b - 1 < lags]
    if short:
        notes.append(f"pieces starting at epochs {short} are shorter than `noise_lags` + 1 steps: their noise sums "
                     "fewer lags.")
    if time_unit == "epoch" and statistics.sampling == "reshuffled":
        notes.append("epoch-scale diffusion takes the steps of an epoch as independent; reshuffled batches are "
                     "anti-correlated within an epoch, so the true epoch-scale diffusion is smaller.")
    if statistics.sampling == "fixed":
        notes.append("fixed minibatches repeat every epoch: the noise is a periodic forcing, not a diffusion.")

    # Per-layer diagnostics and the pieces each coordinate needs.
    slices = [statistics.layer_slice(l) for l in range(L)]
    snr = np.zeros((S, L))
    pe_dir = np.zeros((S, L))
    pe_iso = np.zeros((S, L))
    cross = np.zeros((S, L, L))
    floor = np.zeros((S, L, L))
    growth = {}  # layer -> (S,) c per step; (S, R, n_b) c / rho
    directions = {}
    for j in range(S):
        resid, dof = _noise_vectors(increments[j], noise, None if pairs is None else pairs[j])
        blocks = [resid[..., sl].reshape(-1, sl.stop - sl.start) for sl in slices]
        covs = [b.T @ b / dof for b in blocks]
        tr = np.array([np.trace(c) for c in covs])
        fro = np.array([np.linalg.norm(c) for c in covs])
        for a in range(L):
            for b in range(L):
                if a == b:
                    cross[j, a, b] = floor[j, a, b] = 1.0
                    continue
                c_ab = blocks[a].T @ blocks[b] / dof
                denom = np.sqrt(fro[a] * fro[b])
                cross[j, a, b] = np.linalg.norm(c_ab) / denom if denom > 0 else 0.0
                floor[j, a, b] = np.sqrt(tr[a] * tr[b] / dof) / denom if denom > 0 else 0.0
        g = grads[j]
        for l, sl in enumerate(slices):
            gl = g[..., sl]
            g_mean = gl.mean(axis=1)
            g_var = ((gl - g_mean[:, None]) ** 2).sum(axis=(1, 2)) / n_b
            with np.errstate(divide="ignore", invalid="ignore"):
                snr[j, l] = np.mean(np.linalg.norm(g_mean, axis=1) / np.sqrt(g_var))
            mean_inc = increments[j][..., sl].mean(axis=(0, 1))
            norm = np.linalg.norm(mean_inc)
            u = mean_inc / norm if norm > 0 else np.zeros_like(mean_inc)
            var_u = float(u @ covs[l] @ u)
            with np.errstate(divide="ignore", invalid="ignore"):
                pe_dir[j, l] = 2.0 * norm**2 / var_u if var_u > 0 else np.inf
                pe_iso[j, l] = 2.0 * (sl.stop - sl.start) * norm**2 / tr[l] if tr[l] > 0 else np.inf
            if "norm" in kinds:
                w = before[j][..., sl]
                rho = np.linalg.norm(w, axis=-1)
                if np.any(rho == 0):
                    raise ValueError(f"`coordinates`='norm' needs non-zero weights: layer {statistics.layer_names[l]} "
                                     f"is all zero at a traced step of epoch {int(epochs[j])}.")
                w_hat = w / rho[..., None]
                quad = np.einsum("rbi,ij,rbj->rb", w_hat, covs[l], w_hat)
                c = (tr[l] - quad) / 2.0  # tr D - w^T D w per step, D = covariance / 2
                growth.setdefault(l, []).append((c, rho))
    for l, sl in enumerate(slices):
        if "direction" in kinds:
            total = (before[-1][:, -1, sl] + updates[-1][:, -1, sl]).mean(axis=0) - before[0][:, 0, sl].mean(axis=0)
            n = np.linalg.norm(total)
            directions[l] = total / n if n > 0 else np.eye(sl.stop - sl.start)[0]

    models: list[CoordinateModel] = []
    ratios: dict[str, np.ndarray] = {}
    for layer, kind, index in chosen:
        l = statistics.layer_index(layer)
        sl = slices[l]
        samples = [_coordinate_samples(kind, index, before[j][..., sl], increments[j][..., sl],
                                       (grads if source == "updates" else updates)[j][..., sl], eta, source,
                                       directions.get(l), layer, None if pairs is None else pairs[j][..., sl])
                   for j in range(S)]
        name = samples[0][3]
        u = samples[0][4]
        # Lags fit inside a piece: a piece of n steps sums at most n - 1 of them.
        fits = [_fit(x, dx, noise, min(lags, x.shape[1] - 1), p) for x, dx, _, _, _, p in samples]
        others = [_fit(x, do, noise, min(lags, x.shape[1] - 1), p) for x, _, do, _, _, p in samples]
        per_step = {k: np.array([f[k][0] for f in fits]) for k in ("drift", "stiffness", "noise", "kurtosis")}
        other = {k: np.array([f[k][0] for f in others]) for k in ("drift", "noise")}
        with np.errstate(divide="ignore", invalid="ignore"):
            upd = per_step if source == "updates" else other
            grd = other if source == "updates" else per_step
            ratios[f"{name}:drift"] = upd["drift"] / grd["drift"]
            ratios[f"{name}:diffusion"] = upd["noise"] / grd["noise"]
        centre = np.array([x[:, 0, 0].mean() for x, *_ in samples])
        spread = np.array([x[:, 0, 0].var(ddof=1) if R > 1 else 0.0 for x, *_ in samples])
        d_step = per_step["noise"] / 2.0
        a_step = per_step["drift"]
        k_measured = per_step["stiffness"]
        k_step = np.zeros(S) if closure == "mean-field" else np.clip(k_measured, 0.0, None)
        if discrete_correction:
            k_step, d_step = _corrected(k_step, d_step, epochs)
        c_step = np.zeros(S)
        mean_inverse = np.zeros(S)
        mean_inverse_sq = np.zeros(S)
        if kind == "norm":
            c_step = np.array([np.mean(c) for c, _ in growth[l]])
            mean_inverse = np.array([np.mean(c / rho) for c, rho in growth[l]])
            mean_inverse_sq = np.array([np.mean(c / rho**2) for c, rho in growth[l]])
        if frame == "centred" and kind == "norm" and closure == "mean-field":
            k_step = mean_inverse_sq
        with np.errstate(divide="ignore", invalid="ignore"):
            peclet = np.where(d_step > 0, a_step**2 / d_step, np.inf)
        scale = d_step.max() if d_step.max() > 0 else 1.0
        d_used = np.maximum(d_step, _DIFFUSION_FLOOR * scale)
        floored = int(np.sum(d_step < _DIFFUSION_FLOOR * scale))
        if floored:
            notes.append(f"{name}: {floored} of {S} pieces had noise <= {_DIFFUSION_FLOOR:g} of the largest; "
                         "floored there.")
        drift, stiff, diff, c = a_step / dt, k_step / dt, d_used / dt, c_step / dt
        t_last = starts[-1] + n_b * dt if horizon is None else max(float(horizon), starts[-1] + n_b * dt)
        if frame == "absolute":
            lower, upper = _interval(centre, spread, drift, diff, starts, t_last, kind)
        if frame == "centred":
            lower, upper = _centred_interval(spread[0], stiff, diff, starts, t_last)
            if np.any(stiff > 0):
                dyn = Dynamics(potential=Harmonic(1.0), potential_scale=_schedule(starts, stiff),
                               diffusion=_schedule(starts, diff))
            else:
                dyn = Dynamics(diffusion=_schedule(starts, diff))
        elif kind == "norm" and closure == "mean-field":
            force = drift - mean_inverse / dt  # the measured mean drift less the ensemble mean of c/rho
            dyn = Dynamics(potential=_log_potential(lower, upper), potential_scale=_schedule(starts, c),
                           force=_schedule(starts, force), diffusion=_schedule(starts, diff))
        elif closure == "linear":
            dyn = Dynamics(potential=Harmonic(1.0), potential_scale=_schedule(starts, stiff),
                           force=_schedule(starts, drift + stiff * centre), diffusion=_schedule(starts, diff))
        else:
            dyn = Dynamics(potential=Flat(), force=_schedule(starts, drift), diffusion=_schedule(starts, diff))
        models.append(CoordinateModel(
            layer=layer, kind="weight" if kind == "weight" else kind, name=name, dynamics=dyn, epochs=epochs,
            starts=starts, drift=drift, stiffness=stiff, diffusion=diff, measured_stiffness=k_measured / dt,
            measured_diffusion=d_step / dt, centre=centre, spread=spread, noise_growth=c, kurtosis=per_step["kurtosis"], peclet=peclet,
            lower=lower, upper=upper, index=index, direction=u, frame=frame))
        clipped = int(np.sum(k_measured < 0)) if closure == "linear" else 0
        if clipped:
            notes.append(f"{name}: {clipped} of {S} pieces had a negative stiffness, clipped to 0.")
    settings = {"time_unit": time_unit, "source": source, "closure": closure, "frame": frame,
                "sampling": statistics.sampling,
                "noise": noise, "discrete_correction": bool(discrete_correction),
                "calibrated_epochs": epochs.tolist(), "replicas": R, "step_duration": dt, "noise_lags": lags,
                "learning_rate": eta, "steps_per_epoch": n_b, "optimizer": statistics.optimizer}
    return LayerwiseDynamics(coordinates=tuple(models), settings=settings, epochs=epochs, snr=snr,
                             direction_peclet=pe_dir, isotropic_peclet=pe_iso, cross_layer=cross,
                             cross_layer_floor=floor, source_ratio=ratios, notes=tuple(notes))


def _coordinate_samples(kind: str, index: int | None, before: np.ndarray, inc: np.ndarray, inc_other_raw: np.ndarray,
                        eta: float, source: str, u: np.ndarray | None, layer: str,
                        pair: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Coordinate before each step, its increments from this source and from the other one, its
    name, its direction, and the coordinate's component of the paired-batch noise (or None).

    Inputs (R, n, d_l) over n consecutive steps; outputs (R, n, 1), one column for :func:`_fit`.
    The norm's noise component is ŵ·ξ, its linear part (the Itô term changes the mean only).
    """
    other = -eta * inc_other_raw if source == "updates" else inc_other_raw
    if kind == "weight":
        x, dx, do = before[..., index], inc[..., index], other[..., index]
        p = None if pair is None else pair[..., index]
        name = f"{layer}[{index}]"
    elif kind == "norm":
        rho = np.linalg.norm(before, axis=-1)
        x = rho
        dx = np.linalg.norm(before + inc, axis=-1) - rho
        do = np.linalg.norm(before + other, axis=-1) - rho
        p = None if pair is None else np.einsum("rni,rni->rn", before, pair) / rho
        name = f"|{layer}|"
    else:
        x, dx, do = before @ u, inc @ u, other @ u
        p = None if pair is None else pair @ u
        name = f"u.{layer}"
    return _columns(x), _columns(dx), _columns(do), name, u, (None if p is None else _columns(p))


def _columns(a: np.ndarray) -> np.ndarray:
    """(R, n) -> (R, n, 1)."""
    return a[..., None]


def _schedule(starts: np.ndarray, values: np.ndarray) -> Schedule:
    return Schedule(starts[1:], values)


def _log_potential(lower: float, upper: float) -> Tabulated:
    """U(ρ) = −log ρ on [lower, upper] (force 1/ρ; scaled by c(t) it is the norm's noise-driven growth)."""
    rho = np.linspace(lower, upper, _LOG_NODES)
    return Tabulated(-np.log(rho), [lower], [upper])


def _interval(centre: np.ndarray, spread: np.ndarray, drift: np.ndarray, diff: np.ndarray, starts: np.ndarray,
              t_last: float, kind: str) -> tuple[float, float]:
    """Ensemble means ± 10 standard deviations of the free (mean-field) spread, over all pieces."""
    ends = np.append(starts[1:], t_last)
    var = spread[0] + np.concatenate([[0.0], np.cumsum(2.0 * diff * (ends - starts))])
    mean = np.concatenate([[centre[0]], centre[0] + np.cumsum(drift * (ends - starts))])
    lo = min(np.min(mean - 10 * np.sqrt(var)), np.min(centre - 10 * np.sqrt(np.maximum(spread, 0))))
    hi = max(np.max(mean + 10 * np.sqrt(var)), np.max(centre + 10 * np.sqrt(np.maximum(spread, 0))))
    width = hi - lo if hi > lo else max(abs(centre[0]), 1.0) * 1e-3
    lo, hi = lo - 0.05 * width, hi + 0.05 * width
    if kind == "norm":
        lo = max(lo, 0.1 * float(np.min(centre)))
    return float(lo), float(hi)


def _centred_interval(spread0: float, stiff: np.ndarray, diff: np.ndarray, starts: np.ndarray,
                      t_last: float) -> tuple[float, float]:
    """± 10 standard deviations of the largest variance the centred model reaches.

    Each piece's Ornstein–Uhlenbeck variance is propagated exactly:
    v' = v e^{-2kτ} + (D/k)(1 − e^{-2kτ}) (v + 2Dτ for k = 0).
    """
    ends = np.append(starts[1:], t_last)
    v = largest = max(float(spread0), 0.0)
    for k, d, tau in zip(stiff, diff, ends - starts):
        decay = np.exp(-2.0 * k * tau)
        v_end = v * decay + (d / k * (1.0 - decay) if k * tau > 1e-12 else 2.0 * d * tau)
        largest = max(largest, v_end)
        v = v_end
    half = 10.0 * np.sqrt(largest) if largest > 0 else 1e-12
    return -float(half), float(half)
