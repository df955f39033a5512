"""One young threshold (issue 22): ``infer.young_threshold_myr``, default ``io.YOUNG_THRESHOLD_MYR``.

It is a reporting choice, so it is not part of a trained model's fingerprint, and no module keeps a copy of
its value (50 Myr, log10 7.69897) as a literal.
"""

import math
import re
from pathlib import Path

import yaml

from ysocensus import io
from ysocensus.config import schema_path

SRC = Path(__file__).resolve().parents[1] / "src" / "ysocensus"
#: how a copy of the 50 Myr threshold was written in the modules before there was one key
LITERALS = re.compile(r"7\.69897|log10\(5e7\)|log10\(50e6\)|log10\(5\.0e7\)")


def test_the_default_is_fifty_myr_in_one_place():
    assert io.YOUNG_THRESHOLD_MYR == 50.0
    infer = yaml.safe_load(schema_path("infer").read_text())
    assert infer["properties"]["young_threshold_myr"]["default"] == io.YOUNG_THRESHOLD_MYR


def test_no_module_keeps_its_own_copy():
    hits = []
    for path in SRC.rglob("*.py"):
        for k, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if LITERALS.search(code) and '"""' not in line and "description" not in line:
                hits.append(f"{path.relative_to(SRC)}:{k}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_it_is_not_part_of_a_trained_model():
    from ysocensus.model.checkpoint import FINGERPRINT_KEYS

    train = yaml.safe_load(schema_path("train").read_text())
    observe = yaml.safe_load(schema_path("observe").read_text())
    assert not any("young" in k for k in FINGERPRINT_KEYS)
    assert not any("young" in k for k in train["properties"])
    assert not any("young" in k for k in observe["properties"])


def test_validation_and_peers_take_it_from_the_workflow():
    import inspect

    from ysocensus.baselines.peers import run_compare_peers
    from ysocensus.validation.run import run_validate

    for f in (run_validate, run_compare_peers):
        p = inspect.signature(f).parameters["young_threshold_myr"]
        assert p.default == io.YOUNG_THRESHOLD_MYR
    rules = (Path(__file__).resolve().parents[1] / "workflow" / "rules")
    text = "".join(p.read_text() for p in rules.glob("*.smk"))
    # every rule that reports young stars passes the one key
    assert text.count('young_threshold_myr=config["infer"]["young_threshold_myr"]') >= 5
    assert math.isclose(math.log10(io.YOUNG_THRESHOLD_MYR * 1e6), 7.69897, abs_tol=1e-5)
