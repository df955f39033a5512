"""The adapter to the stage-3 model: an (untrained, small) checkpoint through the real driver.

Sampling cost and shapes do not depend on the weights, so an untrained network checks the plumbing:
physical-unit samples of the right shape, statuses, determinism, threads. Imports torch, not Lightning.
"""

import numpy as np
import pytest

from tests.inference.catalogs import make_catalog, write_catalog
from ysocensus import io
from ysocensus.inference import InferOptions, infer_catalog

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from ysocensus.model.checkpoint import save_checkpoint
    from ysocensus.model.network import FlowTransformer, NetworkConfig
    from ysocensus.model.tokens import Normalisation

    frame = make_catalog(400)
    torch.manual_seed(0)
    net = FlowTransformer(NetworkConfig(dim=16, latent_dim=8, heads=2, latent_heads=1, layers=1))
    stats = Normalisation.fit({c: frame[c].to_numpy() for c in frame.columns})
    path = tmp_path_factory.mktemp("model") / "model.ckpt"
    save_checkpoint(path, net, stats, {"test": "untrained"})
    return path


def test_model_sampler_through_the_driver(tmp_path, checkpoint):
    from ysocensus.inference.model_adapter import load_sampler

    frame = make_catalog(60, all_null_rows=4)
    cat = tmp_path / "cat.parquet"
    write_catalog(frame, cat)
    sampler = load_sampler(checkpoint, device="cpu", threads=1, n_steps=2, method="euler")
    assert torch.get_num_threads() == 1
    out = tmp_path / "post.parquet"
    report = infer_catalog(cat, out, sampler, InferOptions(n_samples=8, batch_size=25, seed=3))
    post = io.read_table(out, io.POSTERIOR).to_pandas()
    assert len(post) == 60 and report.status == {"ok": 56, "prior_only": 4}
    assert post["distance_pc_q50"].gt(0).all() and post["initial_mass_msun_q50"].gt(0).all()
    assert np.all(post["log10_age_yr_q16"] <= post["log10_age_yr_q84"])
    meta = io.read_metadata(out)["sampler"]
    assert meta["device"] == "cpu" and meta["model"] == str(checkpoint)
    again = tmp_path / "again.parquet"
    infer_catalog(cat, again, load_sampler(checkpoint, device="cpu", threads=1, n_steps=2, method="euler"),
                  InferOptions(n_samples=8, batch_size=25, seed=3))
    np.testing.assert_array_equal(io.read_table(again, io.POSTERIOR).column("av_mag_q50").to_numpy(),
                                  post["av_mag_q50"].to_numpy())


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from ysocensus.inference.model_adapter import load_sampler

    with pytest.raises(FileNotFoundError, match="no such model checkpoint"):
        load_sampler(tmp_path / "absent.ckpt")


def test_cuda_request_without_gpu_is_refused(checkpoint):
    from ysocensus.inference.model_adapter import load_sampler

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="cuda"):
        load_sampler(checkpoint, device="cuda")


def test_a_stars_posterior_does_not_depend_on_its_batch_or_threads(tmp_path, checkpoint):
    """Each star draws from its own stream (seed, source_id): batch size, thread count and the rows skipped
    around it change nothing, to the byte."""
    from ysocensus.inference.model_adapter import load_sampler

    frame = make_catalog(60, all_null_rows=4)
    cat = tmp_path / "cat.parquet"
    write_catalog(frame, cat)
    cols = {}
    for batch, threads in ((7, 1), (60, 2), (25, 1)):
        out = tmp_path / f"post_{batch}_{threads}.parquet"
        infer_catalog(cat, out, load_sampler(checkpoint, device="cpu", threads=threads, n_steps=2, method="euler"),
                      InferOptions(n_samples=8, batch_size=batch, seed=3))
        cols[batch, threads] = io.read_table(out, io.POSTERIOR).to_pandas()
    ref = cols[7, 1]
    assert (tmp_path / "post_7_1.parquet").read_bytes() == (tmp_path / "post_60_2.parquet").read_bytes()
    for key, other in cols.items():
        for c in ("log10_age_yr_q50", "distance_pc_q16", "av_mag_q84", "p_young"):
            np.testing.assert_array_equal(other[c].to_numpy(), ref[c].to_numpy(), err_msg=f"{c} at {key}")
    # the same star in a smaller catalog: the same draws
    sub = tmp_path / "sub.parquet"
    write_catalog(frame.iloc[30:], sub)
    out = tmp_path / "post_sub.parquet"
    infer_catalog(sub, out, load_sampler(checkpoint, device="cpu", threads=1, n_steps=2, method="euler"),
                  InferOptions(n_samples=8, batch_size=9, seed=3))
    np.testing.assert_array_equal(io.read_table(out, io.POSTERIOR).column("log10_age_yr_q50").to_numpy(),
                                  ref["log10_age_yr_q50"].to_numpy()[30:])
