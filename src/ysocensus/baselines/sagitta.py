"""Sagitta (McBride et al. 2021, AJ 162, 282; the ``test`` and ``peers`` extras install it) on our catalog columns.

Sagitta is three small 1-D CNNs trained on real Gaia DR2/EDR3 + 2MASS data: an A_V network on
(l, b, parallax), a pre-main-sequence classifier and an age regressor on (parallax, A_V, G, BP, RP, J, H, K).
Its pipeline (``sagitta.sagitta.SagittaPipeline``) downloads missing columns from the Gaia archive and
imports galpy for (ra, dec) → (l, b); we give it every column, so neither is needed: this wrapper calls the
networks (``sagitta.model_code.Sagitta`` with the state dicts that ship in the wheel) with the pipeline's
own arithmetic:

* missing values are filled as ``DataTools.fix_and_mark_nans`` does (G 20, BP 21, RP 19, J/H/K 18,
  parallax 0; errors 0.1 mag, parallax error 2 mas);
* A_V = 5 · AVnet(l/360, b/180 + 0.5, parallax/5) (the pipeline's default when no A_V column is given);
* inputs scaled to [−1, 1] over the pipeline's ranges (``DataTools.normalize_gaia``); ``pms`` =
  sigmoid(PMSnet), ``age`` = AGEnet scaled back to log10(age/yr) over [6, 8].

``n_mc`` > 0 repeats the prediction on inputs scattered by their errors (the pipeline's
``--*_uncertainty`` option) and returns the mean ``pms`` and the median ``age`` over draws as well.

Column mapping (``COLUMNS``): Sagitta's names ← ours; Gaia magnitude errors come from the flux-over-error
columns as 2.5 log10((foe + 1)/(foe − 1)) (the formula of Sagitta's own archive query).
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from ysocensus import io

#: Sagitta's input names ← our catalog columns
COLUMNS = {
    "l": "l", "b": "b", "parallax": "parallax", "eparallax": "parallax_error",
    **dict(zip(("g", "bp", "rp"), io.GAIA_BANDS, strict=True)),
    **dict(zip(("eg", "ebp", "erp"), io.GAIA_FLUX_OVER_ERROR, strict=True)),
    **dict(zip(("j", "h", "k"), io.TMASS_BANDS, strict=True)),
    **dict(zip(("ej", "eh", "ek"), io.TMASS_ERRORS, strict=True)),
}
#: DataTools.fix_and_mark_nans
NAN_FILL = {"g": 20.0, "bp": 21.0, "rp": 19.0, "j": 18.0, "h": 18.0, "k": 18.0, "parallax": 0.0, "av": 5.0,
            "eg": 0.1, "ebp": 0.1, "erp": 0.1, "ej": 0.1, "eh": 0.1, "ek": 0.1, "eparallax": 2.0}
#: DataTools.normalize_gaia
RANGES = {"g": (4.0, 20.0), "bp": (0.0, 21.0), "rp": (0.0, 19.0), "j": (0.0, 18.0), "h": (0.0, 18.0),
          "k": (0.0, 18.0), "parallax": (0.0, 29.0), "av": (0.0, 5.0), "age": (6.0, 8.0)}
NET_INPUTS = ("parallax", "av", "g", "bp", "rp", "j", "h", "k")


def gaia_mag_error(flux_over_error) -> np.ndarray:
    """σ(mag) from Gaia flux / flux error, as Sagitta's archive query: 2.5 log10((f + σ_f)/|f − σ_f|)."""
    foe = np.asarray(flux_over_error, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.5 * np.log10((foe + 1.0) / np.abs(foe - 1.0))


def inputs_from_catalog(frame) -> dict[str, np.ndarray]:
    """Sagitta's inputs (its names) from catalog columns; NaN where missing (not yet filled)."""

    n = io.n_rows(frame)
    out = {}
    for s, ours in COLUMNS.items():
        v = io.float_column(frame, ours, n)
        out[s] = gaia_mag_error(v) if ours in io.GAIA_FLUX_OVER_ERROR else v
    return out


def fill_missing(inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(filled inputs, NaN masks) as ``DataTools.fix_and_mark_nans``."""
    filled, masks = {}, {}
    for k, v in inputs.items():
        v = np.asarray(v, np.float64)
        m = ~np.isfinite(v)
        masks[k] = m
        filled[k] = np.where(m, NAN_FILL[k], v) if k in NAN_FILL else v
    return filled, masks


def _scale(v, name):
    lo, hi = RANGES[name]
    return (v - lo) / (hi - lo) * 2.0 - 1.0


def _unscale(v, name):
    lo, hi = RANGES[name]
    return (v + 1.0) / 2.0 * (hi - lo) + lo


class SagittaModel:
    """The three Sagitta networks in eval mode (CPU)."""

    def __init__(self, state_dict_dir: str | None = None):
        import torch
        from sagitta.model_code import Sagitta

        if state_dict_dir is None:
            import sagitta

            state_dict_dir = os.path.join(os.path.dirname(sagitta.__file__), "model_state_dicts")
        self.dir = state_dict_dir
        self.nets = {}
        for name, shape in (("av", 40), ("pms", 60), ("age", 60)):
            net = Sagitta(connectShape=shape)
            net.load_state_dict(torch.load(os.path.join(state_dict_dir, f"{name}_model.pt"), map_location="cpu"))
            self.nets[name] = net.eval()

    def _run(self, name, x: np.ndarray, batch: int = 65536) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, len(x), batch):
                t = torch.as_tensor(x[s:s + batch], dtype=torch.float32)[:, None, :]
                out.append(self.nets[name](t)[:, 0].numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def predict_filled(self, f: Mapping[str, np.ndarray], av: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Predictions for filled inputs (``fill_missing``): av, pms, age (log10 yr)."""
        if av is None:
            x = np.stack([f["l"] / 360.0, f["b"] / 180.0 + 0.5, f["parallax"] / 5.0], -1)
            av = self._run("av", x).astype(np.float64) * 5.0
        x = np.stack([_scale(av if k == "av" else f[k], k) for k in NET_INPUTS], -1)
        pms = 1.0 / (1.0 + np.exp(-self._run("pms", x).astype(np.float64)))
        age = _unscale(self._run("age", x).astype(np.float64), "age")
        return {"av": av, "pms": pms, "age": age}

    def predict(self, inputs: Mapping[str, np.ndarray], n_mc: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
        """Point predictions (``av``, ``pms``, ``age`` = log10 age/yr); with ``n_mc`` > 0 also ``pms_mean``,
        ``age_median``, ``age_std`` over inputs scattered by their errors."""
        filled, masks = fill_missing(inputs)
        out = self.predict_filled(filled)
        out["n_missing_inputs"] = np.sum([masks[k] for k in ("parallax", "g", "bp", "rp", "j", "h", "k")], 0)
        if n_mc > 0:
            rng = np.random.default_rng(seed)
            pms, age = [], []
            for _ in range(n_mc):
                f = dict(filled)
                for k in ("parallax", "g", "bp", "rp", "j", "h", "k"):
                    e = filled["e" + k]
                    f[k] = filled[k] + np.where(masks[k], 0.0, rng.standard_normal(len(e)) * e)
                r = self.predict_filled(f)
                pms.append(r["pms"])
                age.append(r["age"])
            out["pms_mean"] = np.mean(pms, 0)
            out["age_median"] = np.median(age, 0)
            out["age_std"] = np.std(age, 0)
        return out


def available() -> str | None:
    """None when Sagitta can be imported, else why not."""
    try:
        import sagitta.model_code  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"sagitta not importable ({type(exc).__name__}: {exc}); pip install -e \".[peers]\""
    return None
