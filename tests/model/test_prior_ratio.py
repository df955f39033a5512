"""The population / training-mix prior ratio and its importance resampling (no Lightning)."""
import numpy as np
import pytest
import torch

from ysocensus.model.checkpoint import load, save_checkpoint
from ysocensus.model.config import merge
from ysocensus.model.posterior import FlowPosterior, flat_to_frame, resample, top_up_factor
from ysocensus.model.network import FlowTransformer, NetworkConfig
from ysocensus.config import section
from ysocensus.model.prior_ratio import (FieldTilt, PriorRatio, fit_prior_ratio, loss_weights, structure_class,
                                         weight_classes, zones_config)
from ysocensus.model.tokens import N_THETA, N_X, Normalisation


def test_weight_classes_distinct_binned_and_bad():
    idx, cw = weight_classes(np.array([1000.0, 1.0, 50.0, 1.0]))
    assert cw.tolist() == [1.0, 50.0, 1000.0] and idx.tolist() == [2, 0, 1, 0]
    w = np.logspace(0, 3, 100)
    idx, cw = weight_classes(w, max_classes=4)
    assert len(cw) == 4 and idx.min() == 0 and idx.max() == 3
    # each bin's weight is the mean weight of its rows, so E[w] is kept
    assert np.isclose(cw[idx].sum(), w.sum(), rtol=0.3)
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        weight_classes(np.array([1.0, 0.0, 2.0]))


def _component_sample(n, seed=0):
    """Two components: 'old' (z0 > 0, weight 1000) and 'young' (z0 < 0, weight 1), like the field and the
    young complexes of the population stage (sharp in age)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, N_THETA)).astype(np.float32)
    sky = np.tile(np.array([[0.0, 1.0, 0.0, 1.0]], np.float32), (n, 1))
    w = np.where(z[:, 0] > 0, 1000.0, 1.0)
    return z, sky, w


def test_fit_recovers_the_expected_weight_given_theta():
    z, sky, w = _component_sample(20000)
    model, summary = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=1)
    assert summary["class_weights"] == [1.0, 1000.0] and summary["accuracy"] > 0.97
    assert summary["mean_ratio_check"] == pytest.approx(1.0, abs=0.05)
    probe = torch.zeros(2, N_THETA)
    probe[0, 0], probe[1, 0] = -1.5, 1.5
    log_r = model(probe, torch.as_tensor(sky[:2]))
    # r = E[w | θ]: 1 for the young side, 1000 for the old side (log ratio ln 1000 = 6.9)
    assert float(log_r[1] - log_r[0]) == pytest.approx(np.log(1000.0), abs=0.5)
    # with the loss already weighted by w (power 1) the ratio is flat
    flat, _ = fit_prior_ratio(z, sky, w, power=1.0, steps=50)
    assert torch.allclose(flat(probe, torch.as_tensor(sky[:2])), torch.zeros(2), atol=1e-5)


def test_systematic_resampling_and_ess():
    g = torch.Generator().manual_seed(0)
    uniform = torch.zeros(3, 8)
    idx, ess = resample(uniform, 8, g)
    assert torch.equal(idx.sort(1).values, torch.arange(8).expand(3, 8))  # each proposal once
    assert torch.allclose(ess, torch.full((3,), 8.0))
    peaked = torch.full((1, 8), -50.0)
    peaked[0, 5] = 0.0
    idx, ess = resample(peaked, 4, g)
    assert (idx == 5).all() and float(ess) == pytest.approx(1.0)
    dead = torch.full((1, 4), float("nan"))
    idx, ess = resample(dead, 4, g)  # no finite weight: proposals kept as they are
    assert torch.equal(idx[0], torch.arange(4))


def test_importance_resampling_gives_the_tilted_gaussian():
    # proposals N(0, 1) weighted by exp(a x) are N(a, 1): the SIR estimate of the mean is a
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 256, generator=g)
    a = 0.7
    idx, _ = resample(a * x, 256, g)
    out = torch.gather(x, 1, idx)
    assert float(out.mean()) == pytest.approx(a, abs=0.03)
    assert float(out.std()) == pytest.approx(1.0, abs=0.05)


def _x(n):
    x = np.full((n, 2 * N_X + 2), np.nan)
    x[:, 1:4] = 14.0
    x[:, N_X + 1:N_X + 4] = 0.01
    x[:, 2 * N_X], x[:, 2 * N_X + 1] = 30.0, 5.0
    return x


def _net_ratio_and_stars():
    """An untrained small network, a prior ratio fitted to the two-component sample, and 50 stars."""
    torch.manual_seed(0)
    cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    net = FlowTransformer(cfg)
    z, sky, w = _component_sample(20000)
    ratio, _ = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=1)
    return cfg, net, ratio, flat_to_frame(_x(50))


def test_population_prior_moves_samples_and_roundtrips_in_checkpoint(tmp_path):
    cfg, net, ratio, frame = _net_ratio_and_stars()
    sim = FlowPosterior(net, Normalisation(), n_steps=2, prior="simulation", prior_ratio=ratio)
    pop = FlowPosterior(net, Normalisation(), n_steps=2, prior="population", prior_ratio=ratio, oversample=4)
    s_sim, _ = sim.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    s_pop, status = pop.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    assert s_pop.shape == s_sim.shape and (status == "ok").all()
    # log age is θ0 (standardised with mean 0, sd 1 here): the old side carries 1000× the prior mass
    assert (s_pop[..., 0] > 0).mean() > (s_sim[..., 0] > 0).mean() + 0.2
    assert pop.last_ess.shape == (50,) and (pop.last_ess <= 256).all() and (pop.last_ess >= 1).all()
    # saved and loaded with the model; a checkpoint trained with population weights has none
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, net, Normalisation(), merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}), prior_ratio=ratio)
    loaded = load(p)
    assert loaded.prior == "population" and loaded.prior_ratio is not None
    for a, b in zip(ratio.state_dict().values(), loaded.prior_ratio.state_dict().values()):
        assert torch.equal(a, b)
    save_checkpoint(p, net, Normalisation(), merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}))
    assert load(p).prior_ratio is None
    with pytest.raises(ValueError, match="prior must be"):
        FlowPosterior(net, Normalisation(), prior="galaxy")


def test_the_structure_class_is_the_one_that_holds_the_members_alone():
    classes = np.array([0, 0, 1, 1, 2, 2])
    assert structure_class(classes, np.array([1, 1, 0, 0, 0, 0], bool)) == 0
    assert structure_class(classes, np.array([1, 0, 0, 0, 0, 0], bool)) == -1  # a field star shares the class
    assert structure_class(classes, np.array([1, 1, 1, 1, 0, 0], bool)) == -1  # members in two classes
    assert structure_class(classes, np.zeros(6, bool)) == -1


def test_the_structure_prior_keeps_the_members_side_and_roundtrips(tmp_path):
    """With the young side (weight 1) the members, the structure posterior puts (almost) every sample there: the
    classifier's p(member | θ) is ~0 on the old side. The class is recorded in the checkpoint."""
    cfg, net, _, frame = _net_ratio_and_stars()
    z, sky, w = _component_sample(20000)
    ratio, summary = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=1, members=w == 1.0)
    assert summary["structure_class"] == 0 and ratio.structure_class == 0
    member = FlowPosterior(net, Normalisation(), n_steps=2, prior="structure", prior_ratio=ratio, oversample=4)
    sim = FlowPosterior(net, Normalisation(), n_steps=2, prior="simulation", prior_ratio=ratio)
    s_mem, status = member.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    s_sim, _ = sim.sample_frame(frame, 64, torch.Generator().manual_seed(3))
    assert (status == "ok").all()
    assert (s_mem[..., 0] < 0).mean() > 0.95 and (s_mem[..., 0] < 0).mean() > (s_sim[..., 0] < 0).mean() + 0.2
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, net, Normalisation(), merge({"anchors": {"enabled": False}, "network": cfg.to_dict()}),
                    prior_ratio=ratio)
    assert load(p).prior_ratio.structure_class == 0
    none, _ = fit_prior_ratio(z, sky, w, power=0.0, steps=10, seed=1, members=np.zeros(len(w), bool))
    with pytest.raises(ValueError, match="weight class"):
        FlowPosterior(net, Normalisation(), prior="structure", prior_ratio=none).sample_frame(
            frame, 8, torch.Generator().manual_seed(3))


def test_stars_with_a_low_ess_get_more_proposals_and_p_young_comes_from_all_weights():
    _, net, ratio, frame = _net_ratio_and_stars()
    plain = FlowPosterior(net, Normalisation(), n_steps=2, prior="population", prior_ratio=ratio, oversample=2)
    more = FlowPosterior(net, Normalisation(), n_steps=2, prior="population", prior_ratio=ratio, oversample=2,
                         min_ess=40, max_oversample=8)
    plain.sample_frame(frame, 32, torch.Generator().manual_seed(3))
    e0 = plain.last_ess
    assert plain.last_proposals.shape == (50, 64, N_THETA)
    s, _ = more.sample_frame(frame, 32, torch.Generator().manual_seed(3))
    low = e0 < 40
    assert low.any() and (~low).any()
    # each low star gets the proposals its ESS says it needs (a power of two per sample, 8 x 32 in all at most)
    extra = top_up_factor(e0[low], 40, 2, 8)
    assert ((extra >= 1) & (extra <= 6)).all()
    assert more.last_proposals.shape == (50, 64 + 32 * extra.max(), N_THETA)
    got = np.isfinite(more.last_log_weights[low, 64:]).sum(1)
    assert (got <= 32 * extra).all() and (got >= 0.9 * 32 * extra).all()  # non-finite proposals get no weight
    # stars above the target keep their 64 proposals (the extra slots carry no weight), the others gain ESS
    assert np.isneginf(more.last_log_weights[~low, 64:]).all()
    assert np.median(more.last_ess[low]) > 2 * np.median(e0[low])
    # the samples are drawn from the weighted proposals
    assert np.isfinite(s).all()
    from ysocensus.inference.summaries import weighted_probability_below

    p = weighted_probability_below(more.last_proposals[..., 0], more.last_log_weights, 0.0)
    assert np.abs(p - (s[..., 0] < 0.0).mean(1)).mean() < 0.1


def test_using_prior_switches_for_a_block_and_restores():
    post = FlowPosterior(FlowTransformer(NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)),
                         Normalisation())
    with post.using_prior("simulation"):
        assert post.prior == "simulation"
    assert post.prior == "population"
    with pytest.raises(ValueError, match="prior must be"):
        with post.using_prior("galaxy"):
            pass
    assert post.prior == "population"


def _tilt():
    # the laptop population: the field's weight steps from 50 (young field thinned to 0.02) to 1000 (field
    # thinned to 0.001) at young_field_age_max_myr = 50 Myr (ysocensus/schemas/population.schema.yaml defaults)
    return FieldTilt.from_population(section("population", {}), 0.2)


def test_field_tilt_makes_the_training_prior_continuous_across_the_step():
    tilt = _tilt()
    assert tilt.log_age == pytest.approx(np.log10(50e6)) and (tilt.w_below, tilt.w_above) == (50.0, 1000.0)
    age = np.array([tilt.log_age - 1e-7, tilt.log_age + 1e-7])
    w = tilt.field_weight(age)
    assert w.tolist() == [50.0, 1000.0]
    for power in (0.0, 0.5):
        lam = tilt.loss_factor(age, w, power)
        # simulated density ∝ population / w; training prior = that × w^p · λ: no step any more
        density = w ** power * lam / w
        assert density[0] == pytest.approx(density[1], rel=1e-5)
        # and the ratio population / training, w^(1−p) / λ, is the bridge
        assert np.allclose(w ** (1 - power) / lam, np.exp((1 - power) * tilt.log_bridge(age)))
        assert np.allclose(loss_weights(w, age, power, tilt), w ** power * lam)
    # λ = 1 outside the zone and at its edges (the tilt is continuous there), and for stars that are not field
    out = np.array([7.0, tilt.log_age - 0.2, tilt.log_age + 0.2 - 1e-9, 8.5])
    assert np.allclose(tilt.loss_factor(out, tilt.field_weight(out), 0.0), 1.0, atol=1e-6)
    assert tilt.loss_factor(np.array([7.6]), np.array([1.0]), 0.0).tolist() == [1.0]
    assert loss_weights(w, None, 0.0, None).tolist() == [1.0, 1.0]
    assert FieldTilt.from_population(section("population", {}), 0.0) is None


def test_field_tilt_refuses_a_zone_of_complex_members_and_counts_outliers():
    with pytest.raises(ValueError, match=r"train.parquet: 2 of 3 rows .*rows \[1, 2\].*field_tilt_dex"):
        _tilt().check_zone(np.array([7.0, 7.6, 7.65, 7.8]), np.array([1.0, 1.0, 1.0, 1000.0]), "train.parquet")
    # association members of 40-60 Myr beside the field: counted, their share of the ratio is classified
    assert _tilt().check_zone(np.array([7.6, 7.6, 7.8, 7.65]), np.array([1.0, 50.0, 1000.0, 50.0]), "t") == 1
    assert _tilt().check_zone(np.array([7.0, 7.6, 7.8]), np.array([1.0, 50.0, 1000.0]), "train.parquet") == 0
    # a cluster's age outlier among 200 field stars of the zone is counted, not an error
    age = np.r_[np.full(200, 7.6), 7.55]
    assert _tilt().check_zone(age, np.r_[np.full(200, 50.0), 1.0], "train.parquet") == 1


def test_prior_ratio_with_a_tilt_is_the_bridge_in_the_zone_and_roundtrips(tmp_path):
    tilt = _tilt()
    rng = np.random.default_rng(2)
    age = rng.uniform(6.5, 9.0, 20000)
    scale = (7.8, 0.6)  # (mean, std) of log age in model space
    z = rng.normal(size=(20000, N_THETA)).astype(np.float32)
    z[:, 0] = (age - scale[0]) / scale[1]
    sky = np.tile(np.array([[0.0, 1.0, 0.0, 1.0]], np.float32), (20000, 1))
    w = tilt.field_weight(age)  # field stars only
    ratio, summary = fit_prior_ratio(z, sky, w, power=0.0, steps=300, seed=1, tilt=tilt, age_scale=scale)
    assert summary["tilt"] == tilt.to_dict() and summary["mean_ratio_check"] == pytest.approx(1.0, abs=0.05)
    probe = np.array([7.0, tilt.log_age - 0.1, tilt.log_age, tilt.log_age + 0.1, 8.5])
    zz = torch.zeros(5, N_THETA)
    zz[:, 0] = torch.as_tensor((probe - scale[0]) / scale[1])
    r = ratio(zz, torch.as_tensor(sky[:5])).exp().numpy()
    assert r[1:4] == pytest.approx(np.exp(tilt.log_bridge(probe[1:4])), rel=1e-4)  # computed, not classified
    assert r[0] == pytest.approx(50.0, rel=0.1) and r[4] == pytest.approx(1000.0, rel=0.1)  # the classifier
    # back to the training mix as simulated: r_untilted = w_field^(1−p) in the zone, and the untilt weight 1/λ
    # is r_tilted / r_untilted (young side of the step up-weighted, old side down-weighted)
    sk = torch.as_tensor(sky[:5])
    r_sim = ratio(zz, sk, tilted=False).exp().numpy()
    assert r_sim[1:4] == pytest.approx(tilt.field_weight(probe[1:4]), rel=1e-4)
    untilt = ratio.log_untilt(zz, sk).exp().numpy()
    assert untilt[[0, 4]].tolist() == [1.0, 1.0]
    assert untilt[1:4] == pytest.approx(r[1:4] / r_sim[1:4], rel=1e-4) and untilt[1] > 1 > untilt[3]
    cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    p = tmp_path / "m.ckpt"
    save_checkpoint(p, FlowTransformer(cfg), Normalisation(), merge({"anchors": {"enabled": False},
                                                                     "network": cfg.to_dict()}), prior_ratio=ratio)
    back = load(p).prior_ratio
    assert back.tilt == tilt and torch.equal(back(zz, torch.as_tensor(sky[:5])), ratio(zz, torch.as_tensor(sky[:5])))


def test_prior_ratio_in_the_zone_keeps_association_members_of_the_step_age():
    """Members of a complete (weight-1) association at the step's age beside the thinned field: where only the
    association lives the ratio is its weight, 1, not the field's bridge; where only the field lives, the bridge."""
    tilt = _tilt()
    rng = np.random.default_rng(4)
    n = 20000
    age = rng.uniform(6.5, 9.0, n)
    assoc = rng.random(n) < 0.08
    age[assoc] = rng.uniform(tilt.log_age - 0.15, tilt.log_age + 0.15, assoc.sum())
    scale = (7.8, 0.6)
    z = rng.normal(size=(n, N_THETA)).astype(np.float32)
    z[:, 0] = (age - scale[0]) / scale[1]
    sky = np.where(assoc[:, None], np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 0.0, 1.0]])).astype(np.float32)
    w = np.where(assoc, 1.0, tilt.field_weight(age))
    assert tilt.check_zone(age, w, "t") == int((assoc & tilt.in_zone(age)).sum())
    ratio, _ = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=2, tilt=tilt, age_scale=scale)
    probe = np.array([tilt.log_age - 0.1, tilt.log_age + 0.1])
    zz = torch.zeros(2, N_THETA)
    zz[:, 0] = torch.as_tensor((probe - scale[0]) / scale[1])
    r_assoc = ratio(zz, torch.as_tensor(sky[assoc][:2])).exp().numpy()
    r_field = ratio(zz, torch.as_tensor(sky[~assoc][:2])).exp().numpy()
    # (the classifier leaks a little field probability, weighted by the field's 50-1000, hence the tolerance)
    assert np.all((r_assoc > 0.9) & (r_assoc < 1.5)) and np.all(np.exp(tilt.log_bridge(probe)) > 60)
    assert r_field == pytest.approx(np.exp(tilt.log_bridge(probe)), rel=0.1)


# ------------------------------------------------------------------------------------------------
# the near-young field: its own weight class, told to the classifier by a flag (population.near_young_sigmas)
# ------------------------------------------------------------------------------------------------
ZONES = (np.array([[100.0, 0.0, 0.0], [0.0, 200.0, 50.0]]), np.array([30.0, 20.0]))
DIST = (2.0, 0.3)  # (mean, std) of log10 distance_pc in model space


def _sky(l_deg, b_deg):
    l, b = np.deg2rad(l_deg), np.deg2rad(b_deg)
    return np.stack([np.sin(l), np.cos(l), np.sin(b), np.cos(b)], -1).astype(np.float32)


def _z_at(d_pc, n=None):
    d = np.atleast_1d(np.asarray(d_pc, np.float64))
    z = np.zeros((d.size, N_THETA), np.float32)
    z[:, 3] = (np.log10(d) - DIST[0]) / DIST[1]
    return torch.as_tensor(z)


def _zoned_ratio(**kw):
    torch.manual_seed(0)
    return PriorRatio([1.0, 10.0, 1000.0], zones=zones_config(ZONES), distance_scale=DIST, **kw)


def test_near_flag_at_known_positions_and_zones_roundtrip(tmp_path):
    ratio = _zoned_ratio()
    # (l, b, d): the first zone's centre (x = 100), its edge, beyond it, the second zone, and the Sun
    l, b, d = zip((0.0, 0.0, 100.0), (0.0, 0.0, 129.0), (0.0, 0.0, 131.0), (0.0, 90.0, 100.0),
                  (np.rad2deg(np.arctan2(200.0, 0.0)), np.rad2deg(np.arctan2(50.0, 200.0)), np.hypot(200.0, 50.0)),
                  (45.0, 0.0, 1.0))
    flag = ratio.near_flag(_z_at(d), torch.as_tensor(_sky(np.array(l), np.array(b))))
    assert flag.tolist() == [True, True, False, False, True, False]
    # broadcast over proposals [B, S, 5] with one sky row per star [B, 1, 4], as the sampler calls it
    zz = _z_at([100.0, 300.0]).reshape(1, 2, N_THETA)
    one_sky = torch.as_tensor(_sky(np.array([0.0]), np.array([0.0])))[:, None]
    assert ratio.near_flag(zz, one_sky).tolist() == [[True, False]]
    assert ratio.mlp[0].in_features == N_THETA + 4 + 1
    # the zones travel in config(): a rebuilt module (JSON, as the checkpoint stores it) gives the same log r
    import json

    cfg = json.loads(json.dumps(ratio.config()))
    assert cfg["zones"] == zones_config(ZONES) and cfg["distance_scale"] == list(DIST) and cfg["n_theta"] == N_THETA
    back = PriorRatio(**cfg)
    back.load_state_dict(ratio.state_dict())
    sky = torch.as_tensor(_sky(np.array(l), np.array(b)))
    assert torch.equal(back(_z_at(d), sky), ratio(_z_at(d), sky))
    net_cfg = NetworkConfig(dim=16, latent_dim=16, heads=2, latent_heads=2, layers=1)
    p = tmp_path / "m.ckpt"
    model_cfg = merge({"anchors": {"enabled": False}, "network": net_cfg.to_dict()})
    save_checkpoint(p, FlowTransformer(net_cfg), Normalisation(), model_cfg, prior_ratio=ratio)
    loaded = load(p).prior_ratio
    assert loaded.zones == ratio.zones and torch.equal(loaded(_z_at(d), sky), ratio(_z_at(d), sky))


def test_a_checkpoint_config_without_zones_gives_the_same_log_r():
    torch.manual_seed(1)
    old = PriorRatio([1.0, 50.0, 1000.0], tilt=_tilt().to_dict(), age_scale=(7.8, 0.6))
    cfg = old.config()
    # the keys a prior ratio of a checkpoint from before the zones stored
    legacy = {k: cfg[k] for k in ("class_weights", "power", "hidden", "n_theta", "n_sky", "tilt", "age_scale")}
    assert legacy["n_theta"] == old.mlp[0].in_features - 4 == N_THETA
    new = PriorRatio(**legacy)
    new.load_state_dict(old.state_dict())
    assert new.zones is None and new.mlp[0].in_features == N_THETA + 4
    z = torch.randn(7, 3, N_THETA)
    sky = torch.as_tensor(_sky(np.arange(7) * 50.0, np.arange(7) * 10.0 - 30.0))[:, None]
    assert torch.equal(new(z, sky), old(z, sky)) and torch.equal(new.log_untilt(z, sky), old.log_untilt(z, sky))
    assert not new.near_flag(z, sky).any()
    # empty zones are no zones
    assert PriorRatio([1.0], zones=zones_config((np.zeros((0, 3)), np.zeros(0)))).zones is None


def test_near_field_rows_have_their_own_weight_untilted():
    """Field stars inside the zones (weight 10 at every age) beside the far field (50 / 1000 stepping at 50 Myr):
    their loss weight is not tilted, check_zone leaves them out, and the fitted ratio at a proposal inside a zone
    is 10 at any age (the flag tells the classifier), the far field's bridge / weights outside."""
    tilt = _tilt()
    rng = np.random.default_rng(5)
    n = 20000
    age = rng.uniform(6.5, 9.0, n)
    scale = (7.8, 0.6)
    z = rng.normal(size=(n, N_THETA)).astype(np.float32)
    z[:, 0] = (age - scale[0]) / scale[1]
    z[:, 3] = rng.uniform(-0.5, 0.5, n)  # 70-200 pc
    sky = _sky(rng.uniform(-40.0, 40.0, n), rng.uniform(-20.0, 20.0, n))
    near = _zoned_ratio().near_flag(torch.as_tensor(z), torch.as_tensor(sky)).numpy()
    assert 0.1 < near.mean() < 0.5
    w = np.where(near, 10.0, tilt.field_weight(age))
    zone = tilt.in_zone(age)
    # λ = 1 for the near rows (one weight across the step), the tilt for the far field
    lam = loss_weights(w, age, 0.0, tilt)
    assert np.all(lam[near] == 1.0) and not np.allclose(lam[~near & zone], 1.0)
    assert tilt.check_zone(age, w, "t", near=near) == 0
    assert tilt.check_zone(age, w, "t") == int((near & zone).sum())  # without the flag they count as others
    ratio, summary = fit_prior_ratio(z, sky, w, power=0.0, steps=400, seed=3, tilt=tilt, age_scale=scale,
                                     zones=ZONES, distance_scale=DIST)
    assert summary["class_weights"] == [10.0, 50.0, 1000.0] and summary["near_structure_rows"] == int(near.sum())
    assert summary["mean_ratio_check"] == pytest.approx(1.0, abs=0.05)
    probe = np.array([7.0, tilt.log_age - 0.1, tilt.log_age + 0.1, 8.5])
    zz = torch.zeros(4, N_THETA)
    zz[:, 0] = torch.as_tensor((probe - scale[0]) / scale[1])
    zz[:, 3] = float((np.log10(100.0) - DIST[0]) / DIST[1])
    r_in = ratio(zz, torch.as_tensor(_sky(np.zeros(4), np.zeros(4)))).exp().numpy()         # x = 100: inside
    r_out = ratio(zz, torch.as_tensor(_sky(np.full(4, -35.0), np.zeros(4)))).exp().numpy()  # outside both
    assert r_in == pytest.approx(np.full(4, 10.0), rel=0.1)
    assert r_out[1:3] == pytest.approx(np.exp(tilt.log_bridge(probe[1:3])), rel=1e-3)
    assert r_out[0] == pytest.approx(50.0, rel=0.1) and r_out[3] == pytest.approx(1000.0, rel=0.1)


def test_top_up_factor_sizes_proposals_by_ess():
    # ESS grows about in proportion to the proposals: ESS 20 of a target 32 needs ~2x (with 50 % to spare: 4x
    # in all, 3 more per sample), ESS 1 needs the most allowed; always a power of two in all
    extra = top_up_factor(np.array([31.0, 20.0, 8.0, 1.0, 0.0]), 32, 1, 16)
    assert extra.tolist() == [1, 3, 7, 15, 15]
    assert top_up_factor(np.array([10.0]), 32, 2, 4).tolist() == [2]  # capped at 4 in all
