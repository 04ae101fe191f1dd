"""Inputs of the dye experiment, with units, and the physics derived from them.

The defaults are at the scale of Perrin's sedimentation experiments (J. Perrin,
"Mouvement brownien et réalité moléculaire", Ann. Chim. Phys. 18, 5 (1909)):
grains of gamboge of radius about 0.2 µm and density about 1.2 g/cm³ in water,
in a cell a tenth of a millimetre deep. There sinking and spreading compete
(Péclet number about 2), so both are visible, and the glass relaxes in about an
hour. A drop of molecular dye in a kitchen glass has Pe ≪ 1 and a diffusion time
of years (what the eye sees there is convection, which this model leaves out).

Internally lengths are in micrometres and times in seconds; forces in pN, so
energies are in pN·µm and a viscosity of 1 Pa·s is 1 pN·s/µm².
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


from .._validation import check_finite_positive, check_finite_scalar, check_int_range, check_memory
from ..particles.simulate import MAX_STORED_BYTES

__all__ = ["DyeConfig", "DyePhysics", "config_from_mapping", "config_from_toml", "SECTIONS"]

BOLTZMANN = 1.380649e-23  # J/K (exact, SI 2019)
#: First zero of J1 (= J0'), sets the slowest radial mode of a reflecting cylinder.
BESSEL_J1_ZERO = 3.8317059702075125

#: TOML sections and the settings each holds; a field's name is ``section_key``
#: (``run`` settings keep their bare names).
SECTIONS: dict[str, tuple[str, ...]] = {
    "glass": ("radius_um", "height_um", "top"),
    "drop": ("height_um", "radius_um"),
    "dye": ("radius_um", "density_kg_m3"),
    "water": ("temperature_K", "viscosity_Pa_s", "density_kg_m3", "gravity_m_s2"),
    "run": ("particles", "seed", "duration_s", "dt_s", "frames", "density_per_frame", "grid_r", "grid_z",
            "tracers"),
}


def _field(section: str, key: str) -> str:
    return key if section == "run" else f"{section}_{key}"


def _dotted(field_name: str) -> str:
    """The TOML spelling of a field, for error messages."""
    for section, keys in SECTIONS.items():
        for key in keys:
            if _field(section, key) == field_name:
                return f"{section}.{key}"
    return field_name


@dataclass(frozen=True, kw_only=True)
class DyeConfig:
    """Settings of ``ib-physics dye`` (TOML ``[section] key`` = field ``section_key``).

    Parameters
    ----------
    glass_radius_um, glass_height_um : float
        The glass (a cylinder, bottom at z = 0).
    glass_top : {"reflecting", "absorbing"}
        The water surface: particles bounce back, or leave (an open, sticky surface).
    drop_height_um, drop_radius_um : float
        The drop: a ball on the glass's axis, centre at this height.
    dye_radius_um, dye_density_kg_m3 : float
        Radius and density of one dye particle.
    water_temperature_K, water_viscosity_Pa_s, water_density_kg_m3, water_gravity_m_s2 : float
        The water and gravity.
    particles : int
        Ensemble size N of the particle view.
    seed : int
        Seed of the counter-based generator (paths and the drop's shape).
    duration_s, dt_s : float
        Simulated time and particle step; ``duration_s`` must be a whole number of
        steps per frame interval.
    frames : int
        Common output times of both views (evenly spaced, including 0).
    density_per_frame : int
        Density outputs per frame interval (for the time derivatives of the continuity picture).
    grid_r, grid_z : int
        Cells of the axisymmetric density (also the bins of the comparison).
    tracers : int, optional
        Particles whose every step is kept (the magnified panel); default 6, or every particle of
        a smaller drop.
    """

    glass_radius_um: float = 60.0
    glass_height_um: float = 100.0
    glass_top: str = "reflecting"
    drop_height_um: float = 75.0
    drop_radius_um: float = 10.0
    dye_radius_um: float = 0.37
    dye_density_kg_m3: float = 1194.0
    water_temperature_K: float = 293.15
    water_viscosity_Pa_s: float = 1.002e-3
    water_density_kg_m3: float = 998.2
    water_gravity_m_s2: float = 9.81
    particles: int = 200_000
    seed: int = 2024
    duration_s: float = 3600.0
    dt_s: float = 1.0
    frames: int = 41
    density_per_frame: int = 10
    grid_r: int = 48
    grid_z: int = 80
    tracers: int | None = None

    def __post_init__(self) -> None:
        for name in ("glass_radius_um", "glass_height_um", "drop_radius_um", "dye_radius_um",
                     "dye_density_kg_m3", "water_temperature_K", "water_viscosity_Pa_s", "water_density_kg_m3",
                     "duration_s", "dt_s"):
            _positive(self, name)
        _finite(self, "drop_height_um")
        _finite(self, "water_gravity_m_s2")
        if self.water_gravity_m_s2 < 0:
            raise ValueError(f"`water.gravity_m_s2` must be >= 0, got {self.water_gravity_m_s2}.")
        if self.glass_top not in ("reflecting", "absorbing"):
            raise ValueError(f"`glass.top` must be 'reflecting' or 'absorbing', got {self.glass_top!r}.")
        _integer(self, "particles", 1, 2**32 - 1)
        _integer(self, "seed", 0, 2**63 - 1)
        _integer(self, "frames", 2, 10_000)
        _integer(self, "density_per_frame", 1, 10_000)
        _integer(self, "grid_r", 4, 4096)
        _integer(self, "grid_z", 4, 4096)
        if self.tracers is None:  # six trails, or every particle of a smaller drop
            object.__setattr__(self, "tracers", min(6, int(self.particles)))
        _integer(self, "tracers", 0, min(self.particles, 1000))
        # Stored before any work: every particle at every frame (3D), every density output (and currents).
        frames_bytes = 24.0 * self.particles * (self.frames + 2)
        check_memory(frames_bytes, f"{self.particles:,} particles at {self.frames} frames", "run.particles",
                     limit=MAX_STORED_BYTES, hint=" or `run.frames`")
        outputs = (self.frames - 1) * self.density_per_frame + 1
        check_memory(24.0 * outputs * self.grid_r * self.grid_z, f"{outputs:,} density outputs of "
                     f"{self.grid_r} x {self.grid_z} cells", "run.density_per_frame", limit=MAX_STORED_BYTES,
                     hint=", `run.frames` or the grid")
        a, z0 = self.drop_radius_um, self.drop_height_um
        if a > self.glass_radius_um or z0 - a < 0 or z0 + a > self.glass_height_um:
            raise ValueError(
                f"the drop must lie inside the glass: need drop.radius_um <= glass.radius_um "
                f"({self.glass_radius_um:g}) and drop.radius_um <= drop.height_um <= glass.height_um - "
                f"drop.radius_um ({a:g} <= {z0:g} <= {self.glass_height_um - a:g})."
            )
        steps = self.duration_s / self.dt_s
        per_frame = steps / (self.frames - 1)
        if abs(per_frame - round(per_frame)) > 1e-6 * per_frame or round(per_frame) < 1:
            raise ValueError(
                f"`run.duration_s` ({self.duration_s:g}) must be a whole number of steps `run.dt_s` "
                f"({self.dt_s:g}) per frame interval ({self.frames - 1} intervals)."
            )

    @property
    def steps_per_frame(self) -> int:
        return int(round(self.duration_s / self.dt_s / (self.frames - 1)))

    def physics(self) -> "DyePhysics":
        return DyePhysics.from_config(self)

    def to_toml(self) -> str:
        """The settings as a TOML document that :func:`config_from_toml` reads back."""
        lines = []
        for section, keys in SECTIONS.items():
            lines.append(f"[{section}]")
            for key in keys:
                value = getattr(self, _field(section, key))
                lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
            lines.append("")
        return "\n".join(lines)


def _finite(config: DyeConfig, name: str) -> float:
    return check_finite_scalar(getattr(config, name), _dotted(name))


def _positive(config: DyeConfig, name: str) -> None:
    check_finite_positive(getattr(config, name), _dotted(name))


def _integer(config: DyeConfig, name: str, low: int, high: int) -> None:
    check_int_range(getattr(config, name), _dotted(name), low, high)


@dataclass(frozen=True)
class DyePhysics:
    """What the inputs imply (micrometres, seconds, piconewtons).

    Attributes
    ----------
    thermal_energy : float
        k T in pN·µm.
    friction : float
        Stokes friction 6 π η a in pN·s/µm.
    mobility : float
        1 / friction in µm/(pN·s).
    diffusion : float
        Stokes–Einstein D = k T / (6 π η a) in µm²/s.
    buoyant_weight : float
        (4/3) π a³ (ρ_dye − ρ_water) g in pN (negative: the dye floats).
    settling_velocity : float
        Stokes v = (2/9) Δρ g a² / η in µm/s, positive downwards.
    peclet : float
        Gravitational Péclet number v H / D.
    sedimentation_length : float
        D / v in µm: the barometric height of the late state (inf without buoyancy).
    drop_diffusion_time, glass_diffusion_time, settling_time, relaxation_time, radial_mixing_time : float
        a_drop² / D, H² / D, H / |v|, the slowest decay time of the height profile
        1 / (D (π/H)² + v² / 4D), and R² / (j'₁₁² D), all in seconds.
    """

    thermal_energy: float
    friction: float
    mobility: float
    diffusion: float
    buoyant_weight: float
    settling_velocity: float
    peclet: float
    sedimentation_length: float
    drop_diffusion_time: float
    glass_diffusion_time: float
    settling_time: float
    relaxation_time: float
    radial_mixing_time: float

    @classmethod
    def from_config(cls, c: DyeConfig) -> "DyePhysics":
        kt = BOLTZMANN * c.water_temperature_K * 1e18  # J -> pN·µm
        a = c.dye_radius_um
        friction = 6 * math.pi * c.water_viscosity_Pa_s * a  # Pa·s = pN·s/µm²
        diffusion = kt / friction
        # (kg/m³)(m/s²)(µm³) = 1e-18 N = 1e-6 pN.
        weight = 4 / 3 * math.pi * a**3 * (c.dye_density_kg_m3 - c.water_density_kg_m3) * c.water_gravity_m_s2 * 1e-6
        v = weight / friction
        h, r = c.glass_height_um, c.glass_radius_um
        return cls(
            thermal_energy=kt, friction=friction, mobility=1 / friction, diffusion=diffusion, buoyant_weight=weight,
            settling_velocity=v, peclet=v * h / diffusion,
            sedimentation_length=diffusion / v if v != 0 else math.inf,
            drop_diffusion_time=c.drop_radius_um**2 / diffusion, glass_diffusion_time=h**2 / diffusion,
            settling_time=h / abs(v) if v != 0 else math.inf,
            relaxation_time=1 / (diffusion * (math.pi / h) ** 2 + v**2 / (4 * diffusion)),
            radial_mixing_time=r**2 / (BESSEL_J1_ZERO**2 * diffusion),
        )

    def summary(self) -> str:
        """A few lines for the terminal."""
        return (
            f"D = {self.diffusion:.4g} µm²/s (Stokes–Einstein), settling v = {self.settling_velocity:.4g} µm/s "
            f"(Stokes), Péclet vH/D = {self.peclet:.3g}\n"
            f"time scales: drop diffusion {self.drop_diffusion_time:.4g} s, settling {self.settling_time:.4g} s, "
            f"glass diffusion {self.glass_diffusion_time:.4g} s, relaxation {self.relaxation_time:.4g} s"
        )


def config_from_mapping(values: Mapping[str, Any]) -> DyeConfig:
    """A config from TOML-like data: sections ``{"glass": {"radius_um": 50}}`` or flat field names.

    Unknown sections or keys are refused by name, with the allowed ones.
    """
    flat: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(DyeConfig)}
    for name, value in values.items():
        if name in SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"`{name}` must be a table [{name}] of settings.")
            for key, item in value.items():
                if key not in SECTIONS[name]:
                    raise ValueError(f"unknown setting `{name}.{key}`; [{name}] allows {', '.join(SECTIONS[name])}.")
                flat[_field(name, key)] = item
        elif name in known:
            flat[name] = value
        else:
            raise ValueError(f"unknown setting `{name}`; sections are {', '.join(f'[{s}]' for s in SECTIONS)}.")
    return DyeConfig(**flat)


def config_from_toml(path: str | Path, overrides: Mapping[str, Any] | None = None) -> DyeConfig:
    """Read a TOML config file, then apply flat ``overrides`` (command-line flags)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"`--config` {path} is a directory, not a TOML file.")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"`--config`: no such file: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"`--config` {path} is not a TOML text file (it is not UTF-8 text).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"`--config` {path} is not valid TOML: {exc}") from None
    if not data:
        raise ValueError(f"`--config` {path} holds no settings; leave out --config to run the defaults.")
    data = dict(data)
    run = data.get("run", {})
    if not isinstance(run, Mapping):
        raise ValueError(f"`run` in {path} must be a table [run] of settings, got {run!r}.")
    if overrides:
        data["run"] = {**run, **overrides}
    return config_from_mapping(data)
