"""Maps and completeness on truth-derived fake posteriors (TEST DOUBLES in tests/maps/fake.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.maps.fake import fake_posteriors, tiny_population
from ysocensus import io
from ysocensus.config import section as _stage1_section
from ysocensus.config import section
from ysocensus.maps import healpix, run
from ysocensus.maps.completeness import Completeness
from ysocensus.maps.data import read_truth_joined


def test_split_normal_reproduces_the_percentiles():
    q16, q50, q84 = np.array([6.0, 7.0]), np.array([6.5, 7.2]), np.array([6.7, 8.0])
    x = np.stack([q16, q50, q84], -1)
    cdf = np.stack([healpix.split_normal_cdf(x[i], q16[i], q50[i], q84[i]) for i in range(2)])
    np.testing.assert_allclose(cdf, [[0.158655, 0.5, 0.841345]] * 2, atol=1e-5)


def test_age_bin_probabilities_match_gaussian_samples():
    rng = np.random.default_rng(0)
    mu, sig = np.array([6.3, 6.9, 7.5, 9.0]), 0.3
    samples = mu[:, None] + sig * rng.standard_normal((4, 200000))
    edges = healpix.log10_edges([0, 5, 15, 50])
    p = healpix.age_bin_probabilities(mu - sig, mu, mu + sig, edges)
    exact = np.stack([((samples >= lo) & (samples < hi)).mean(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    np.testing.assert_allclose(p, exact, atol=5e-3)
    nan = healpix.age_bin_probabilities(np.array([np.nan]), np.array([np.nan]), np.array([np.nan]), edges)
    assert (nan == 0).all()


def test_weighted_median_by_pixel_matches_brute_force():
    rng = np.random.default_rng(1)
    pix, val, w = rng.integers(0, 20, 2000), rng.normal(size=2000), rng.uniform(0.1, 3, 2000)
    got = healpix.weighted_median_by_pixel(pix, val, w, 25)
    for p in range(25):
        sel = pix == p
        if not sel.any():
            assert np.isnan(got[p])
            continue
        o = np.argsort(val[sel])
        cw = np.cumsum(w[sel][o])
        assert got[p] == val[sel][o][np.searchsorted(cw, 0.5 * cw[-1])]


def test_healpix_fits_has_units_nested_galactic(tmp_path):
    m = {"A": np.arange(48.0), "B": np.ones(48)}
    healpix.write_healpix(tmp_path / "m.fits", m, {"A": "Myr", "B": "stars/pixel"}, 2, [("YSO_PMIN", 0.5, "")])
    cols, header = healpix.read_healpix(tmp_path / "m.fits")
    np.testing.assert_array_equal(cols["A"], m["A"])
    assert header["ORDERING"] == "NESTED" and header["COORDSYS"] == "G" and header["NSIDE"] == 2
    assert header["units"] == {"A": "Myr", "B": "stars/pixel"} and header["YSO_PMIN"] == 0.5


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Two chunks of a tiny population, fake posteriors and catalogs, and a small dust grid."""
    from ysocensus.dust import DustField

    d = tmp_path_factory.mktemp("maps")
    pops, posts, cats = [], [], []
    for chunk in range(2):
        pop = tiny_population(3000, seed=chunk, tile=chunk)
        cat, post = fake_posteriors(pop, seed=chunk)
        pops.append(str(d / f"pop_{chunk}.parquet"))
        posts.append(str(d / f"post_{chunk}.parquet"))
        cats.append(str(d / f"cat_{chunk}.parquet"))
        io.write_table(pop, pops[-1], io.POPULATION)
        io.write_table(post, posts[-1], io.POSTERIOR)
        cat.to_parquet(cats[-1])
    dust_cfg = _stage1_section("dust", {"grid_extent_xy_pc": 1000.0, "grid_extent_z_pc": 200.0, "grid_step_pc": 25.0,
                                "los_nside": 8, "los_distance_max_pc": 1100.0})
    DustField.build(dust_cfg, [], 1).save(d / "dust.npz")
    return {"dir": d, "pops": pops, "posts": posts, "cats": cats, "dust": str(d / "dust.npz")}


def test_make_maps_writes_every_product(workspace):
    cfg = section("maps", {"nside": 4, "dpi": 50})
    out = {k: str(workspace["dir"] / v) for k, v in run.MAP_OUTPUTS.items()}
    summary = run.make_maps(workspace["posts"], workspace["cats"], workspace["pops"], workspace["dust"], out, cfg)
    for path in out.values():
        assert (workspace["dir"] / path).stat().st_size > 0
    counts, header = healpix.read_healpix(out["counts_fits"])
    assert list(counts) == ["N_0_5MYR", "N_5_15MYR", "N_15_50MYR"]
    assert set(header["units"].values()) == {"stars/pixel"} and header["ORDERING"] == "NESTED"
    # counts add up to the weighted sum of bin probabilities of the candidates
    frames = []
    for p, c, t in zip(workspace["posts"], workspace["cats"], workspace["pops"]):
        post = io.read_table(p, io.POSTERIOR).to_pandas()
        w = io.read_table(t, io.POPULATION).to_pandas().set_index("source_id")["weight"]
        post["weight"] = w.reindex(post["source_id"]).to_numpy()
        frames.append(post)
    post = pd.concat(frames)
    cand = (post["status"] == "ok") & (post["p_young"] >= 0.5)
    probs = healpix.age_bin_probabilities(post["log10_age_yr_q16"][cand].to_numpy(),
                                          post["log10_age_yr_q50"][cand].to_numpy(),
                                          post["log10_age_yr_q84"][cand].to_numpy(), healpix.log10_edges([0, 5, 15, 50]))
    expected = (probs * post["weight"][cand].to_numpy()[:, None]).sum(0)
    np.testing.assert_allclose([counts[k].sum() for k in counts], expected, rtol=1e-9)
    assert summary["candidates"] == int(cand.sum())
    age, _ = healpix.read_healpix(out["median_age_fits"])
    finite = age["MEDIAN_AGE_MYR"][np.isfinite(age["MEDIAN_AGE_MYR"])]
    assert finite.size and np.all((finite > 0.1) & (finite < 100))
    saved = json.loads((workspace["dir"] / out["summary"]).read_text())
    assert "spearman_age_vs_density_inferred" in saved


def test_make_maps_without_population_uses_unit_weights(workspace):
    cfg = section("maps", {"nside": 2, "dpi": 50})
    out = {k: str(workspace["dir"] / ("nopop_" + v)) for k, v in run.MAP_OUTPUTS.items()}
    summary = run.make_maps(workspace["posts"], workspace["cats"], None, workspace["dust"], out, cfg)
    assert summary["candidates_weighted"] == summary["candidates"]


def test_completeness_of_a_perfect_posterior():
    """With exact ages and p_young in {0, 1}, purity is 1 and completeness the observed fraction."""
    pop = tiny_population(2000, seed=3)
    cat, post = fake_posteriors(pop, seed=3, age_sigma=1e-6)
    post["log10_age_yr_q50"] = pop.set_index("source_id")["log10_age_yr"].reindex(post["source_id"]).to_numpy()
    post.loc[post["status"] == "ok", "p_young"] = (post["log10_age_yr_q50"] < np.log10(50e6)).astype(float)
    joined = pop[["source_id"]].merge(post, how="left")
    cfg = section("maps", {})
    comp = Completeness(np.log10(50e6), 0.5, 2, {"distance_pc": cfg["distance_bins_pc"],
                                                 "initial_mass_msun": cfg["mass_bins_msun"],
                                                 "log10_age_yr": cfg["age_bins_log10_yr"]})
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        io.write_table(pop, os.path.join(d, "p.parquet"), io.POPULATION)
        io.write_table(post, os.path.join(d, "q.parquet"), io.POSTERIOR)
        comp.add(read_truth_joined(os.path.join(d, "p.parquet"), os.path.join(d, "q.parquet")))
    s = comp.summary()
    assert s["purity"] == 1.0
    young = pop["log10_age_yr"] < np.log10(50e6)
    inferred = set(post.loc[post["status"] == "ok", "source_id"])
    w = pop["weight"]
    expected = w[young & pop["source_id"].isin(inferred)].sum() / w[young].sum()
    assert s["completeness"] == pytest.approx(expected)
    table = comp.table()
    assert set(table["quantity"]) == {"distance_pc", "log10_age_yr", "initial_mass_msun", "all"}
    assert len(joined) == len(pop)


def test_make_completeness_writes_every_product(workspace):
    cfg = section("maps", {"completeness_nside": 2, "dpi": 50})
    out = {k: str(workspace["dir"] / v) for k, v in run.COMPLETENESS_OUTPUTS.items()}
    s = run.make_completeness(workspace["pops"], workspace["posts"], out, cfg)
    for path in out.values():
        assert (workspace["dir"] / path).stat().st_size > 0
    maps, header = healpix.read_healpix(out["sky_fits"])
    assert header["units"]["COMPLETENESS"] == "fraction"
    ok = np.isfinite(maps["COMPLETENESS"])
    assert ok.any() and np.all((maps["COMPLETENESS"][ok] >= 0) & (maps["COMPLETENESS"][ok] <= 1))
    table = pd.read_csv(out["table"])
    assert 0 < s["completeness"] <= 1 and 0 < s["purity"] <= 1
    assert table.loc[table["quantity"] == "all", "completeness"].iloc[0] == pytest.approx(s["completeness"])


def test_posterior_not_in_population_is_an_error(tmp_path):
    pop = tiny_population(100)
    _, post = fake_posteriors(pop)
    post.loc[0, "source_id"] = 999999999999
    io.write_table(pop, tmp_path / "p.parquet", io.POPULATION)
    io.write_table(post, tmp_path / "q.parquet", io.POSTERIOR)
    with pytest.raises(ValueError, match="not in"):
        read_truth_joined(tmp_path / "p.parquet", tmp_path / "q.parquet")
