"""Figures of rule validate (issue 23, point 9): categorical points are not joined by lines, every target line is
labelled, the reliability diagram's legend and counts are readable, a smoke test is marked."""

import numpy as np
import pytest

from ysocensus import io
from ysocensus.validation import figures
from ysocensus.validation.calibration import LEVELS


def _block(n, err):
    cov = [a + err for a in LEVELS]
    return {"n_stars": n, "noise_floor": {"per_parameter_p90": 0.01, "all_parameters_p90": 0.012},
            "parameters": {p: {"coverage": cov, "max_coverage_error": abs(err), "sbc_ks_pvalue": 0.5,
                               "rank_histogram": [10] * 20} for p in io.PARAMETERS}}


def _reliability(n):
    bins = [{"p_lo": lo, "p_hi": hi, "n_stars": n // (k + 1), "n_effective": n / (k + 1), "mean_p": (lo + hi) / 2,
             "fraction_positive": (lo + hi) / 2} for k, (lo, hi) in enumerate(zip((0, 0.05, 0.2, 0.5, 0.8, 0.95),
                                                                                  (0.05, 0.2, 0.5, 0.8, 0.95, 1.0)))]
    return {"bins": bins, "expected": 121112.9, "observed": 122297.0, "z": 0.1, "ratio": 0.99}


@pytest.fixture()
def out():
    o = _block(18811, 0.01)
    o["by_survey_combination"] = {"gaia": {**_block(332, 0.09), "meets_min_group": False},
                                  "gaia+tmass+wise": {**_block(9640, 0.02), "meets_min_group": True}}
    o["by_companion"] = {"single": _block(13663, 0.01), "unresolved_binary": _block(5148, -0.01)}
    o["targets"] = {"overall": {"threshold": 0.05}, "by_survey_combination": {"gaia+tmass+wise": {"threshold": 0.08}}}
    o["p_young"] = {"test_population": {"reliability": _reliability(18811)},
                    "population_weighted": {"reliability": _reliability(10422)}}
    return o


@pytest.fixture()
def captured(monkeypatch):
    figs = {}

    def keep(fig, path, plt, dpi=110):
        figs[path.name] = fig

    monkeypatch.setattr(figures, "_save", keep)
    yield figs
    import matplotlib.pyplot as plt

    plt.close("all")


def test_survey_combinations_are_points_and_the_target_is_labelled(out, captured, tmp_path):
    import matplotlib.pyplot as plt

    figures.coverage_figure(out, tmp_path / "coverage.png", plt)
    ax = captured["coverage.png"].axes[1]
    data = [line for line in ax.lines if len(line.get_xdata()) > 2]
    assert data and all(line.get_linestyle() == "None" for line in data)  # categories: no joining lines
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("target" in t and "0.08" in t for t in legend)
    assert any("too few for the target" in t for t in legend)
    for a in captured["coverage.png"].axes:
        assert a.get_legend() is None or min(t.get_fontsize() for t in a.get_legend().get_texts()) >= 8


def test_reliability_legend_and_counts_are_readable(out, captured, tmp_path):
    import matplotlib.pyplot as plt

    figures.p_young_reliability(out["p_young"], tmp_path, plt)
    fig = captured["p_young_reliability.png"]
    texts = [t.get_text() for a in fig.axes for t in a.texts]
    texts += [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert not [t for t in texts if "e+" in t or "e-" in t]
    assert "18,811" in " ".join(texts) and "121,113" in " ".join(texts)
    assert min(t.get_fontsize() for t in fig.axes[0].get_legend().get_texts()) >= 8


def test_a_smoke_test_is_marked(out, captured, tmp_path):
    import matplotlib.pyplot as plt

    figures.coverage_figure(out, tmp_path / "coverage.png", plt, smoke_test=True)
    assert any("SMOKE TEST" in t.get_text() for t in captured["coverage.png"].texts)
    figures.coverage_figure(out, tmp_path / "coverage.png", plt)
    assert not any("SMOKE TEST" in t.get_text() for t in captured["coverage.png"].texts)


def test_make_all_writes_the_figures(out, tmp_path):
    figures.make_all(out, {}, {}, tmp_path, smoke_test=True)
    assert {p.name for p in tmp_path.glob("*.png")} == {"coverage.png", "sbc_ranks.png", "p_young_reliability.png"}
    assert np.all([p.stat().st_size > 10_000 for p in tmp_path.glob("*.png")])
