"""The Transformer: KV reuse equals the full sequence; attention structure; missing entries."""
import pytest
import torch

from model_helpers import random_batch
from ysocensus.model import sampler
from ysocensus.model.masks import MaskMix, posterior_states, sample_condition_states
from ysocensus.model.network import FlowTransformer, NetworkConfig, latent_slots
from ysocensus.model.tokens import LATENT, MISSING, N_THETA, OBSERVED

CFG = NetworkConfig(dim=32, latent_dim=16, heads=2, latent_heads=2, layers=2)


def _net(seed=0):
    torch.manual_seed(seed)
    return FlowTransformer(CFG).eval()


@pytest.mark.parametrize("anchored", [False, True])
def test_kv_reuse_samples_equal_full_sequence_for_the_same_noise(anchored):
    torch.manual_seed(0)
    net = FlowTransformer(CFG, anchor_inputs=anchored).eval()
    b = random_batch(24, seed=1)
    state = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(2))
    lat_idx, lat_ok = latent_slots(state)
    anchor = {}
    if anchored:  # per-slot affine maps as ``anchors`` gives them; the anchor weights made non-zero
        g = torch.Generator().manual_seed(5)
        anchor = {"anchor_c": torch.randn(lat_idx.shape, generator=g),
                  "anchor_s": torch.rand(lat_idx.shape, generator=g) + 0.05}
        with torch.no_grad():
            net.lat_anchor_w.normal_(generator=g)
            net.lat_theta_w.normal_(generator=g)
    cond = sampler.Conditioning(b["values"], b["logsig"], b["sky"], state, lat_idx, lat_ok, **anchor)
    noise = torch.randn(24, 7, lat_idx.shape[1], generator=torch.Generator().manual_seed(3))
    plain = sampler.sample(net, sampler.Conditioning(b["values"], b["logsig"], b["sky"], state, lat_idx, lat_ok),
                           7, 3, noise=noise)
    for method in ("euler", "midpoint", "heun"):
        a = sampler.sample(net, cond, 7, 3, method, noise=noise)
        cond_full = sampler.Conditioning(b["values"], b["logsig"], b["sky"], state, lat_idx, lat_ok, **anchor)
        f = sampler.sample(net, cond_full, 7, 3, method, noise=noise, full_sequence=True)
        assert torch.allclose(a, f, atol=1e-5), (method, (a - f).abs().max())
        assert a.abs().sum() > 0
        if anchored and method == "midpoint":
            assert not torch.allclose(a, plain, atol=1e-3)  # the anchors do reach the velocity


def test_observation_encoding_does_not_depend_on_latent_values():
    net = _net()
    b = random_batch(8, seed=4)
    state = posterior_states(b["measured"])
    c1 = net.encode(b["values"], b["logsig"], b["sky"], state)
    v2 = b["values"].clone()
    v2[:, :N_THETA] += 5.0  # the (true) latent values must be invisible
    c2 = net.encode(v2, b["logsig"], b["sky"], state)
    lat_idx, lat_ok = latent_slots(state)
    x = torch.randn(8, 3, lat_idx.shape[1])
    t = torch.full((1, 1), 0.7)
    assert torch.equal(net.decode(c1, x, t, lat_idx, lat_ok), net.decode(c2, x, t, lat_idx, lat_ok))


def test_missing_values_are_ignored_but_missingness_is_seen():
    net = _net()
    b = random_batch(8, seed=5)
    state = posterior_states(b["measured"])
    lat_idx, lat_ok = latent_slots(state)
    x = torch.randn(8, 3, lat_idx.shape[1])
    t = torch.full((1, 1), 0.3)
    v = net.decode(net.encode(b["values"], b["logsig"], b["sky"], state), x, t, lat_idx, lat_ok)
    # change the numbers stored at missing positions: no effect
    vals = torch.where(state == MISSING, torch.randn_like(b["values"]) * 10, b["values"])
    v2 = net.decode(net.encode(vals, b["logsig"], b["sky"], state), x, t, lat_idx, lat_ok)
    assert torch.allclose(v, v2, atol=1e-6)
    # mark one more observable as missing: the output changes (what is absent is information)
    s3 = state.clone()
    j = int(torch.nonzero(state[0] == OBSERVED)[0])
    s3[0, j] = MISSING
    v3 = net.decode(net.encode(b["values"], b["logsig"], b["sky"], s3), x, t, lat_idx, lat_ok)
    assert not torch.allclose(v[0], v3[0], atol=1e-4)


def test_padded_latent_slots_do_not_change_the_others():
    net = _net()
    b = random_batch(4, seed=6)
    state = posterior_states(b["measured"])
    li, lo = latent_slots(state)
    li8, lo8 = latent_slots(state, max_latent=8)
    assert lo.sum() == lo8.sum() == 4 * N_THETA
    x = torch.randn(4, 2, N_THETA)
    x8 = torch.cat([x, torch.randn(4, 2, 3)], -1)
    cache = net.encode(b["values"], b["logsig"], b["sky"], state)
    t = torch.full((1, 1), 0.5)
    assert torch.allclose(net.decode(cache, x, t, li, lo), net.decode(cache, x8, t, li8, lo8)[..., :N_THETA], atol=1e-5)
    assert (state[:, :N_THETA] == LATENT).all()


def test_a_star_is_encoded_the_same_whatever_else_is_in_its_batch():
    # encode packs each row's observed tokens and pads to the batch's largest observed count: the padding
    # (set by the other rows) must not change a row's velocity
    net = _net()
    b = random_batch(16, seed=7)
    state = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(8))
    n_obs = (state == OBSERVED).sum(1)
    assert n_obs.min() < n_obs.max()  # rows of different lengths share the batch
    lat_idx, lat_ok = latent_slots(state)
    x = torch.randn(16, 3, lat_idx.shape[1], generator=torch.Generator().manual_seed(9))
    t = torch.full((1, 1), 0.6)
    v = net.decode(net.encode(b["values"], b["logsig"], b["sky"], state), x, t, lat_idx, lat_ok)
    for i in (int(n_obs.argmin()), int(n_obs.argmax())):
        s = slice(i, i + 1)
        vi = net.decode(net.encode(b["values"][s], b["logsig"][s], b["sky"][s], state[s]), x[s], t,
                        lat_idx[s], lat_ok[s])
        assert torch.allclose(v[s], vi, atol=1e-5), (i, (v[s] - vi).abs().max())


def _affine_net():
    torch.manual_seed(0)
    net = FlowTransformer(NetworkConfig(dim=32, latent_dim=16, heads=2, latent_heads=2, layers=2, affine_head=True))
    with torch.no_grad():  # away from the identity the head starts at
        g = torch.Generator().manual_seed(7)
        for p in (net.affine_out.weight, net.affine_out.bias, net.lat_anchor_w, net.lat_theta_w):
            p.normal_(generator=g).mul_(0.3)
    return net.eval()


def test_affine_head_gives_the_same_samples_with_and_without_kv_reuse():
    net = _affine_net()
    b = random_batch(24, seed=1)
    state = posterior_states(b["measured"].clone().index_fill_(1, torch.arange(N_THETA), False))
    lat_idx, lat_ok = latent_slots(state, N_THETA)
    noise = torch.randn(24, 5, N_THETA, generator=torch.Generator().manual_seed(3))
    cond = lambda: sampler.Conditioning(b["values"] * (state == OBSERVED), b["logsig"], b["sky"], state,  # noqa: E731
                                        lat_idx, lat_ok)
    a = sampler.sample(net, cond(), 5, 3, "midpoint", noise=noise)
    f = sampler.sample(net, cond(), 5, 3, "midpoint", noise=noise, full_sequence=True)
    assert torch.allclose(a, f, atol=1e-5), (a - f).abs().max()
    # samples are θ = c + s·y: the head's per-star centres and scales reach them
    c0 = cond()
    sampler.prepare(net, c0)
    assert not torch.allclose(c0.anchor_s, torch.ones_like(c0.anchor_s))
    assert (c0.anchor_s > 0).all() and torch.isfinite(c0.anchor_c).all()


def test_affine_head_learns_from_its_nll_only():
    # the flow loss sees (c, s) with gradients stopped, so it cannot shrink its loss by inflating s; the head
    # is trained by its Gaussian NLL alone
    from ysocensus.model.flow import FlowConfig, flow_matching_loss

    net = _affine_net().train()
    b = random_batch(64, seed=2, p_measured=0.8)
    state = sample_condition_states(b["measured"], MaskMix(), torch.Generator().manual_seed(1))
    out = flow_matching_loss(net, b, state, FlowConfig(), torch.Generator().manual_seed(2))
    assert out.affine is not None and torch.isfinite(out.affine)
    out.fm.backward(retain_graph=True)
    assert net.affine_out.weight.grad is None or float(net.affine_out.weight.grad.abs().sum()) == 0.0
    out.affine.backward()
    assert float(net.affine_out.weight.grad.abs().sum()) > 0


def test_affine_head_on_lamost_rows_only():
    # affine_rows = lamost: the head maps (and is trained on) the rows that observe a LAMOST label; every other
    # row keeps the plain parametrisation (c = 0, s = 1) and adds nothing to the head's NLL
    from ysocensus.model.flow import FlowConfig, flow_matching_loss
    from ysocensus.model.tokens import SURVEY_TOKENS

    net = _affine_net()
    net.config.affine_rows = "lamost"
    b = random_batch(48, seed=4, p_measured=0.8)
    b["measured"][::2, list(SURVEY_TOKENS["lamost"])] = False  # half the stars without a spectrum
    state = posterior_states(b["measured"])
    lamost = (state[:, list(SURVEY_TOKENS["lamost"])] == OBSERVED).any(1)
    assert lamost.any() and not lamost.all()
    cond = sampler.prepare(net, sampler.Conditioning(b["values"], b["logsig"], b["sky"], state,
                                                     *latent_slots(state, N_THETA)))
    identity = (cond.anchor_c == 0).all(1) & (cond.anchor_s == 1).all(1)
    assert torch.equal(identity, ~lamost)
    # the NLL of a batch without LAMOST rows is 0: nothing to train the head on
    no_lamost = state.clone()
    no_lamost[:, list(SURVEY_TOKENS["lamost"])] = MISSING
    out = flow_matching_loss(net.train(), b, no_lamost, FlowConfig(), torch.Generator().manual_seed(2))
    assert float(out.affine.detach()) == 0.0
    with pytest.raises(ValueError, match="network.affine_rows"):
        NetworkConfig(affine_rows="spectra")


def test_zero_anchor_features_equal_no_anchor():
    # a slot without a map, (c, log s) = (0, 0), must give the plain path's velocity, so that groups of rows
    # without any map skip the anchor inputs (anchors.features returns None for them)
    from ysocensus.model.anchors import features

    net = _affine_net()
    b = random_batch(16, seed=5)
    state = posterior_states(b["measured"])
    lat_idx, lat_ok = latent_slots(state)
    cache = net.encode(b["values"], b["logsig"], b["sky"], state)
    x = torch.randn(16, 3, lat_idx.shape[1], generator=torch.Generator().manual_seed(6))
    t = torch.full((1, 1), 0.3)
    zero = torch.zeros(*lat_idx.shape, 2)
    assert torch.allclose(net.decode(cache, x, t, lat_idx, lat_ok, zero), net.decode(cache, x, t, lat_idx, lat_ok),
                          atol=1e-6)
    assert features(torch.zeros(2, 3), torch.ones(2, 3)) is None
    assert features(torch.zeros(2, 3), torch.full((2, 3), 0.5)).shape == (2, 3, 2)


def test_affine_gate_maps_sharp_parameters_and_leaves_broad_ones():
    # affine_widths = (s_full, s_off): full map at s <= s_full, none at s >= s_off, log-linear between
    import math

    net = FlowTransformer(NetworkConfig(dim=16, latent_dim=8, heads=2, latent_heads=2, layers=1, affine_head=True,
                                        affine_widths=(0.1, 0.4)))
    c = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    s = torch.tensor([[0.05, 0.1, 0.2, 0.4]])
    gc, gs = net.affine_gate(c, s)
    w_mid = math.log(0.4 / 0.2) / math.log(0.4 / 0.1)  # 0.5
    assert torch.allclose(gc, torch.tensor([[2.0, 2.0, 2.0 * w_mid, 0.0]]))
    assert torch.allclose(gs, torch.tensor([[0.05, 0.1, 0.2 ** w_mid, 1.0]]))
    ungated = FlowTransformer(NetworkConfig(dim=16, latent_dim=8, heads=2, latent_heads=2, layers=1, affine_head=True))
    assert all(torch.equal(a, b) for a, b in zip(ungated.affine_gate(c, s), (c, s)))
    with pytest.raises(ValueError, match="network.affine_widths"):
        NetworkConfig(affine_widths=(0.4, 0.1))
