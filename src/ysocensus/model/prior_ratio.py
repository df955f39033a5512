"""The prior ratio between the Galactic population and the simulated (young-enriched) training mix.

The population stage thins the old field a lot and the young field a little and keeps young complexes
complete; every simulated star carries ``weight`` = the number of real stars it stands for (1/thinning).
Training on the mix as simulated (``training.importance_power`` = 0) gives young stars the share of the
loss that makes their posteriors accurate, but the model then learns p_sim(θ | x), whose prior holds far
too many young stars. The posterior under the Galactic population follows by importance weighting:

    p_pop(θ | x) ∝ p_sim(θ | x) · r(θ, l, b),    r(θ, l, b) = E_sim[w^(1−p) | θ, l, b]

(the likelihood p(x | θ) is the same in both; ``p`` is the importance power used in the loss, which already
gave the model a prior ∝ p_sim · w^p). The weight is a property of the star's population component, not of
θ, so r is the expected weight given θ and direction: ``PriorRatio`` is a small classifier
p_sim(component class | θ, l, b) over the distinct weights of the training set, and
r = Σ_c p(c | θ, l, b) · w_c^(1−p) (Sugiyama, Suzuki & Kanamori 2012, density-ratio estimation by
probabilistic classification). The posterior package applies it as one correction of its chain
(``posterior.corrections.PopulationRatio``; the tilt's part is ``FieldUntilt``) by sampling–importance–resampling
(Rubin 1988) of the flow's samples, per star (``posterior.importance``).

The field tilt. The thinning changes the field's weight in a step at one age (``population.young_field_age_max_myr``:
50 Myr, weight 50 below, 1000 above), so the simulated age density of the field falls 20× at exactly the age
P(young) asks about. A flow does not learn such a cliff: it smears it, puts young probability of ambiguous
(main-sequence-like) stars above the step, and the population posterior's P(young) comes out too low in odds
(measured: ``docs/measurements.md``, section ``ysocensus.model.prior_ratio``). ``FieldTilt`` removes the cliff from
the training prior: field rows within
``half_width`` dex of the step get the loss weight λ = (w / s(age))^(1−p), with s the smooth bridge (``log_bridge``) from the
weight below to the weight above across the zone, so the network's prior there is ∝ population / s^(1−p), smooth;
the prior ratio in the zone is then exactly s(age)^(1−p) for a field star (computed, not classified), and the
classifier covers the rest. Young associations of the literature (Tuc-Hor, Columba, Carina, Argus, IC 2391/2602 at
40–50 Myr) put complete, weight-1 members inside the zone too, so there the ratio is the mixture the classifier's
class probabilities p_c(θ, l, b) give, with the field's weight taken exactly at the step and the tilt only on field
rows: r = Σ_c p_c w_c^(1−p) / Σ_c p_c λ_c(age) (λ_c = (w_field(age)/s)^(1−p) for the field classes, 1 for the
others), which is the bridge where only field stars are (``PriorRatio.forward``); ``check_zone`` counts the other
rows. What is left is the network's own error in its age prior, measured on held-out stars and removed by the age
recalibration (``model.recalibration``), the chain's next correction for the network's own samples.

The near-young field. Near young structure (spheres of ``population.near_young_sigmas`` × sigma around every
association: ``galaxy.young.near_young_zones``) the population stage thins the field by ``thinning.near_young``
(default 0.1, weight 10) instead of 0.001 / 0.02: for a young star inside ρ Oph or Upper Centaurus–Lupus the
network's proposals were 99.7 % young, but the 0.3 % old tail weighed 1000 against 1 and the population posterior
called the star old; with weight 10 beside 1 the training mix there holds the realistic young/old confusion.
Those rows form their own weight class (10), and the classifier is told exactly where the zones are rather
than left to learn ~60 small spheres from (θ, sky): with ``zones`` it gets a 0/1 input, whether the proposal's
position (distance from θ, direction from the sky features) is inside one (``PriorRatio.near_flag``). With
``near_young`` above both field fractions (the default) the near field has one weight at every age, so the field
tilt concerns the far field's classes only (weights ``w_below`` / ``w_above``): near rows get λ = 1 in
``loss_weights`` and no tilt in ``forward``, and ``check_zone`` leaves them out of its count (the flag tells them
apart exactly). (A near_young between the two fractions raises only the old field's: the young field near
structure keeps the far young field's weight and is tilted with it, the same way in the loss and in the ratio;
near_young equal to the larger fraction is refused by the population stage.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ysocensus.galaxy.young import near_structure
from ysocensus.model.tokens import THETA

#: at most this many weight classes; more distinct weights are binned in log10 weight
MAX_CLASSES = 8
#: the index of distance in θ (standardised log10 distance_pc), for the near-structure flag
DISTANCE_INDEX = [v.name for v in THETA].index("distance_pc")
assert THETA[DISTANCE_INDEX].transform == "log10"


def weight_classes(weights: np.ndarray, max_classes: int = MAX_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Class index per row and the mean weight of each class (distinct weights, or log-quantile bins)."""
    w = np.asarray(weights, np.float64)
    if not np.isfinite(w).all() or (w <= 0).any():
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))[:5]
        raise ValueError(f"prior ratio: weights must be finite and > 0 (rows {bad.tolist()})")
    uniq = np.unique(w)
    if len(uniq) <= max_classes:
        return np.searchsorted(uniq, w), uniq
    edges = np.unique(np.quantile(np.log10(w), np.linspace(0, 1, max_classes + 1)[1:-1]))
    idx = np.searchsorted(edges, np.log10(w), side="right")
    means = np.array([w[idx == k].mean() if (idx == k).any() else 1.0 for k in range(len(edges) + 1)])
    return idx, means


@dataclass(frozen=True)
class FieldTilt:
    """The step of the field's weight in age and the zone around it where the training prior is tilted smooth.

    ``log_age``: log10(age/yr) of the step; ``w_below`` / ``w_above``: the field's weight (1/thinning) below and
    above it; ``half_width``: half the zone, dex.
    """

    log_age: float
    w_below: float
    w_above: float
    half_width: float

    @classmethod
    def from_population(cls, population: dict, half_width: float) -> "FieldTilt | None":
        """From the population config (``young_field_age_max_myr``, ``thinning``); None when there is no step."""
        if half_width <= 0:
            return None
        th = population["thinning"]
        below, above = 1.0 / float(th["young_field"]), 1.0 / float(th["field"])
        if below == above:
            return None
        return cls(math.log10(float(population["young_field_age_max_myr"]) * 1e6), below, above, float(half_width))

    def in_zone(self, log_age):
        return abs(log_age - self.log_age) < self.half_width

    def field_weight(self, log_age):
        """The field's weight at ``log_age`` (the step)."""
        lib = torch if isinstance(log_age, torch.Tensor) else np
        return lib.where(log_age < self.log_age, self.w_below, self.w_above)

    def log_bridge(self, log_age):
        """log s(age): from log w_below at the zone's young edge to log w_above at its old edge along a smoothstep
        3u² − 2u³ (u the position across the zone), so the tilted prior has no kink at the edges either."""
        lib = torch if isinstance(log_age, torch.Tensor) else np
        u = lib.clip((log_age - (self.log_age - self.half_width)) / (2 * self.half_width), 0.0, 1.0)
        u = u * u * (3.0 - 2.0 * u)
        return (1 - u) * math.log(self.w_below) + u * math.log(self.w_above)

    def is_field(self, log_age: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Rows whose weight is the field's weight at their age."""
        return np.isclose(weight, self.field_weight(log_age))

    def loss_factor(self, log_age: np.ndarray, weight: np.ndarray, power: float) -> np.ndarray:
        """λ per row: (w / s(age))^(1−p) for field rows in the zone (weight = the field's weight there), else 1."""
        log_age, weight = np.asarray(log_age, np.float64), np.asarray(weight, np.float64)
        field = self.in_zone(log_age) & self.is_field(log_age, weight)
        return np.where(field, np.exp((1.0 - power) * (np.log(weight) - self.log_bridge(log_age))), 1.0)

    def check_zone(self, log_age: np.ndarray, weight: np.ndarray, where: str, max_fraction: float = 0.5,
                   near: np.ndarray | None = None) -> int:
        """The number of rows in the zone that are not field stars (association members of 40–60 Myr), whose
        share of the ratio there comes from the classifier (module docstring); an error naming them when they
        are more than ``max_fraction`` of the zone's rows, where the tilt would no longer be about the field.
        ``near`` (bool per row): rows of the near-young field (inside a zone of young structure), left out of
        both counts: their weight class is told by the classifier's near-structure flag, not learned."""
        log_age, weight = np.asarray(log_age, np.float64), np.asarray(weight, np.float64)
        zone = self.in_zone(log_age) if near is None else self.in_zone(log_age) & ~np.asarray(near, bool)
        bad = zone & ~self.is_field(log_age, weight)
        if bad.sum() > max_fraction * max(zone.sum(), 1):
            i = np.flatnonzero(bad)[:5]
            raise ValueError(
                f"{where}: {int(bad.sum())} of {int(zone.sum())} rows with log10 age within {self.half_width} dex of "
                f"the field's weight step ({self.log_age:.3f}) are not field stars (rows {i.tolist()}, weights "
                f"{weight[i].tolist()}, log ages {np.round(log_age[i], 3).tolist()}); narrow train.training.field_tilt_dex")
        return int(bad.sum())

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


def loss_weights(weight: np.ndarray, log_age: np.ndarray | None, power: float, tilt: FieldTilt | None) -> np.ndarray:
    """Training loss weight per row, w^p · λ (``FieldTilt.loss_factor``; λ = 1 without a tilt): the network then
    learns the posterior under the prior p_sim · w^p · λ, and ``PriorRatio`` maps it to the population."""
    w = np.asarray(weight, np.float64)
    out = w ** power
    if tilt is not None:
        out = out * tilt.loss_factor(log_age, w, power)
    return out


def zones_config(zones) -> dict | None:
    """(centres [n, 3], radii [n]) of ``galaxy.young.near_young_zones`` → the ``PriorRatio`` argument (None
    when there are none)."""
    if zones is None or len(zones[1]) == 0:
        return None
    return {"centres": np.asarray(zones[0], np.float64).reshape(-1, 3).tolist(),
            "radii": np.asarray(zones[1], np.float64).reshape(-1).tolist()}


class PriorRatio(nn.Module):
    """log r(θ, l, b) up to a constant, from standardised θ [..., 5] and sky features [..., 4].

    ``zones``: {"centres": [[x, y, z], ...] heliocentric pc, "radii": [...] pc} of the near-young field
    (``zones_config``), and ``distance_scale`` the (mean, std) that standardised log10 distance: the MLP then
    gets one more input, the 0/1 near-structure flag of each θ (``near_flag``). Without zones (checkpoints from
    before them) the module is the same as it was, input for input."""

    def __init__(self, class_weights, power: float = 0.0, hidden: int = 64, n_theta: int = 5, n_sky: int = 4,
                 tilt: dict | None = None, age_scale: tuple[float, float] = (0.0, 1.0), zones: dict | None = None,
                 distance_scale: tuple[float, float] = (0.0, 1.0), structure_class: int | None = None):
        super().__init__()
        # the class that holds the members of the named young structure and nothing else (``structure_class``), −1
        # when none does; None: not recorded (a checkpoint from before the structure prior)
        self.structure_class = None if structure_class is None else int(structure_class)
        self.zones = None if not zones or not zones["radii"] else {
            "centres": [list(map(float, c)) for c in zones["centres"]], "radii": list(map(float, zones["radii"]))}
        self.distance_scale = (float(distance_scale[0]), float(distance_scale[1]))
        self.n_theta, self.n_sky = int(n_theta), int(n_sky)
        # the field tilt (``FieldTilt``) and the (mean, std) that standardised log age, to find the zone in z
        self.tilt = None if tilt is None else FieldTilt(**tilt)
        self.age_scale = (float(age_scale[0]), float(age_scale[1]))
        cw = torch.as_tensor(np.asarray(class_weights, np.float64))
        self.register_buffer("class_weight", cw.float())
        self.register_buffer("log_class_weight", ((1.0 - power) * torch.log(cw)).float())
        # classes that are the field's (weight below or above the tilt's step): their weight in the zone is the
        # field's at the proposal's age, and only they carry the tilt
        field = np.zeros(len(cw), bool) if self.tilt is None else (
            np.isclose(cw.numpy(), self.tilt.w_below, rtol=1e-3) | np.isclose(cw.numpy(), self.tilt.w_above, rtol=1e-3))
        self.register_buffer("field_class", torch.as_tensor(field), persistent=False)
        self.power = float(power)
        self.hidden = int(hidden)
        n_in = n_theta + n_sky + (self.zones is not None)
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(cw)))

    def features(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        """The MLP's input [..., n_theta + n_sky (+ 1)]: θ, the sky features and (with zones) the flag."""
        sky = sky.expand(*z.shape[:-1], sky.shape[-1])
        if self.zones is None:
            return torch.cat([z, sky], -1)
        return torch.cat([z, sky, self.near_flag(z, sky).to(z.dtype)[..., None]], -1)

    def near_flag(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        """[...] bool: θ's position inside a zone of young structure (``galaxy.young.near_structure``), from
        standardised θ ``z`` (log10 distance_pc = z[..., DISTANCE_INDEX] · std + mean) and the sky features
        (sin l, cos l, sin b, cos b) → heliocentric x (towards l = 0), y (l = 90°), z (b = 90°), pc, as
        ``galaxy.young.lbd_to_xyz`` and the population stage place stars. All False without zones."""
        if self.zones is None:
            return torch.zeros(z.shape[:-1], dtype=torch.bool, device=z.device)
        sky = sky.expand(*z.shape[:-1], sky.shape[-1]).double()
        d = 10.0 ** (z[..., DISTANCE_INDEX].double() * self.distance_scale[1] + self.distance_scale[0])
        x, y, h = d * sky[..., 3] * sky[..., 1], d * sky[..., 3] * sky[..., 0], d * sky[..., 2]
        return near_structure(x, y, h, self.zones["centres"], self.zones["radii"])

    def logits(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(z, sky))

    def class_log_probs(self, z: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        """log p(c | θ, l, b) [..., classes]: the classifier's output, which ``forward`` and ``log_untilt`` share
        (pass it as ``log_p`` to evaluate both at the same proposals once: most of their cost)."""
        return torch.log_softmax(self.logits(z, sky), -1)

    def forward(self, z: torch.Tensor, sky: torch.Tensor, tilted: bool = True,
                log_p: torch.Tensor | None = None) -> torch.Tensor:
        """log r at standardised θ ``z`` [..., 5] and sky features [..., 4] (broadcast over samples), from the
        network's prior (``tilted``: with the field tilt it was trained with) or from the training mix as
        simulated (``tilted=False``: e.g. a baseline's samples) to the population. In the tilt's zone the field's
        weight is taken exactly at the step and, tilted, divided by the mean tilt (module docstring): the bridge
        s(age)^(1−p) where only field stars are. ``log_p``: ``class_log_probs(z, sky)`` when already computed."""
        log_p = self.class_log_probs(z, sky) if log_p is None else log_p
        log_r = torch.logsumexp(log_p + self.log_class_weight, -1)
        if self.tilt is None:
            return log_r
        log_age = self._log_age(z)
        log_wf = (1.0 - self.power) * torch.log(self.tilt.field_weight(log_age)).to(log_p.dtype)
        log_w = torch.where(self.field_class, log_wf[..., None], self.log_class_weight)
        zone = torch.logsumexp(log_p + log_w, -1)
        if tilted:
            zone = zone + self._log_untilt(log_p, log_age)
        return torch.where(self.tilt.in_zone(log_age), zone, log_r)

    def _log_untilt(self, log_p: torch.Tensor, log_age: torch.Tensor) -> torch.Tensor:
        """−log Σ_c p_c λ_c(age): the tilt's mean over the classes at this θ (0 outside the zone)."""
        log_lam = (1.0 - self.power) * (torch.log(self.tilt.field_weight(log_age)) - self.tilt.log_bridge(log_age))
        log_lam = torch.where(self.field_class, log_lam.to(log_p.dtype)[..., None], torch.zeros_like(log_p))
        d = -torch.logsumexp(log_p + log_lam, -1)
        return torch.where(self.tilt.in_zone(log_age), d, torch.zeros_like(d))

    def log_untilt(self, z: torch.Tensor, sky: torch.Tensor, log_p: torch.Tensor | None = None) -> torch.Tensor:
        """log 1/E[λ | θ, l, b] [...]: the weight that takes the network's posterior back to the posterior under
        the training mix as simulated (0 everywhere without a tilt, and outside its zone). ``log_p``:
        ``class_log_probs(z, sky)`` when already computed."""
        if self.tilt is None:
            return torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        log_p = self.class_log_probs(z, sky) if log_p is None else log_p
        return self._log_untilt(log_p, self._log_age(z)).to(z.dtype)

    def _log_age(self, z: torch.Tensor) -> torch.Tensor:
        """log10(age/yr) from standardised θ (log age is standardised without a transform: ``tokens.THETA``)."""
        return z[..., 0] * self.age_scale[1] + self.age_scale[0]

    def config(self) -> dict:
        """Constructor arguments (the checkpoint stores these beside the state dict)."""
        return {"class_weights": self.class_weight.tolist(), "power": self.power, "hidden": self.hidden,
                "n_theta": self.n_theta, "n_sky": self.n_sky,
                "tilt": None if self.tilt is None else self.tilt.to_dict(), "age_scale": list(self.age_scale),
                "zones": self.zones, "distance_scale": list(self.distance_scale),
                "structure_class": self.structure_class}


def structure_class(classes: np.ndarray, members: np.ndarray) -> int:
    """The weight class whose rows are exactly the members of the named young structure (``members``, bool per row;
    the population keeps them complete, so they share one weight no field star has), or −1."""
    classes, members = np.asarray(classes), np.asarray(members, bool)
    held = np.unique(classes[members])
    if len(held) != 1 or (classes[~members] == held[0]).any():
        return -1
    return int(held[0])


def fit_prior_ratio(z: np.ndarray, sky: np.ndarray, weights: np.ndarray, power: float = 0.0, steps: int = 1500,
                    batch_size: int = 4096, lr: float = 3e-3, seed: int = 0, hidden: int = 64,
                    tilt: FieldTilt | None = None, age_scale: tuple[float, float] = (0.0, 1.0),
                    zones=None, distance_scale: tuple[float, float] = (0.0, 1.0),
                    members: np.ndarray | None = None) -> tuple[PriorRatio, dict]:
    """Train the component classifier on training rows (standardised truth θ, sky features, weights); with a
    ``tilt`` (the loss used ``loss_weights`` with it), the ratio in its zone is the bridge (module docstring),
    located in z by ``age_scale`` = (mean, std) of log age. ``zones``: (centres, radii) of the near-young field
    (``galaxy.young.near_young_zones``), told to the classifier as a flag located by ``distance_scale`` =
    (mean, std) of log10 distance. ``members`` (bool per row): the rows of the named young structure, whose class
    (``structure_class``) the structure prior reads (``posterior.corrections.StructureMembership``).

    Returns the module (eval mode) and a summary: classes, rows, final cross-entropy, accuracy and the
    mean ratio check E_sim[r] / E_sim[w^(1-p) / λ] (1 when the ratio is calibrated on average).
    """
    z = np.asarray(z, np.float32)
    sky = np.asarray(sky, np.float32)
    ok = np.isfinite(z).all(1) & np.isfinite(sky).all(1)
    cls, cw = weight_classes(np.asarray(weights)[ok])
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    tilt_cfg = None if tilt is None else tilt.to_dict()
    member_class = None if members is None else structure_class(cls, np.asarray(members, bool)[ok])
    model = PriorRatio(cw, power, hidden, z.shape[1], sky.shape[1], tilt_cfg, age_scale,
                       zones=zones_config(zones), distance_scale=distance_scale, structure_class=member_class)
    with torch.no_grad():
        X = model.features(torch.as_tensor(z[ok]), torch.as_tensor(sky[ok]))
    y = torch.as_tensor(cls, dtype=torch.long)
    n = len(y)
    summary = {"rows": int(n), "class_weights": [float(v) for v in cw], "power": float(power), "tilt": tilt_cfg,
               "structure_class": member_class}
    if model.zones is not None:
        summary["near_structure_rows"] = int(X[:, -1].sum())
    if len(cw) == 1 or n == 0:  # one weight for every star: the ratio is a constant
        summary.update(cross_entropy=0.0, accuracy=1.0)
        return model.eval().requires_grad_(False), summary
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    lossf = nn.CrossEntropyLoss()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        loss = lossf(model.mlp(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model.mlp(X[i:i + 65536]) for i in range(0, n, 65536)])
        ce = float(lossf(logits, y))
        acc = float((logits.argmax(-1) == y).float().mean())
        nt, ns = z.shape[1], sky.shape[1]
        r = torch.cat([model(X[i:i + 65536, :nt], X[i:i + 65536, nt:nt + ns])
                       for i in range(0, n, 65536)]).exp().double()
        w = np.asarray(weights, np.float64)[ok]
        lam = 1.0 if tilt is None else tilt.loss_factor(z[ok, 0] * age_scale[1] + age_scale[0], w, power)
        wp = torch.as_tensor(w ** (1.0 - power) / lam)
    summary.update(cross_entropy=ce, accuracy=acc, mean_ratio_check=float(r.mean() / wp.mean()))
    return model.requires_grad_(False), summary
