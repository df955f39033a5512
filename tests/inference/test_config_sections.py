"""The infer and maps config sections: defaults from the schemas, every key used, bad values rejected."""

import dataclasses

import pytest

from ysocensus.config import ConfigError
from ysocensus.inference import InferOptions
from ysocensus.config import section

RULE_ONLY = {"device", "ode_method", "ode_steps", "rows_per_batch", "threads", "mem_mb", "runtime"}


def test_infer_defaults_and_every_key_reaches_the_driver_or_the_rule():
    cfg = section("infer")
    assert cfg["n_samples"] == 64 and cfg["young_threshold_myr"] == 50 and cfg["save_samples"] is False
    fields = {f.name for f in dataclasses.fields(InferOptions)}
    assert set(cfg) <= fields | RULE_ONLY, set(cfg) - fields - RULE_ONLY
    opts = InferOptions.from_config(cfg, seed=5, stream=3)
    assert (opts.seed, opts.stream, opts.n_samples, opts.second_threshold_myr) == (5, 3, 64, 10.0)


def test_maps_defaults():
    cfg = section("maps", {"nside": 8})
    assert cfg["nside"] == 8 and cfg["age_bins_myr"] == [0, 5, 15, 50] and cfg["p_young_min"] == 0.5


@pytest.mark.parametrize("name, bad, key", [
    ("infer", {"n_samples": 0}, "n_samples"),
    ("infer", {"on_invalid": "ignore"}, "on_invalid"),
    ("infer", {"n_sample": 5}, "n_sample"),
    ("maps", {"nside": 3}, "nside"),
    ("maps", {"p_young_min": 2}, "p_young_min"),
])
def test_bad_values_are_rejected_naming_the_key(name, bad, key):
    with pytest.raises(ConfigError, match=key):
        section(name, bad)
