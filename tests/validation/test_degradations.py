"""The catalogs as users supply them (validation.degradations): what each keeps, and how the model reads it."""
import numpy as np
import pyarrow as pa
import pytest

from ysocensus import io
from ysocensus.model.tokens import N_THETA, OBSERVABLES, Normalisation, tokenize
from ysocensus.validation.degradations import DEGRADATIONS, SURVEYS_KEPT, degrade
from tests.inference.catalogs import make_catalog

SURVEY_OF = {v.name: v.survey for v in OBSERVABLES}


def _searched(arrays, survey):
    """Whether each row's tokens of ``survey`` count as searched (a null one is a non-detection, not a gap)."""
    idx = [N_THETA + i for i, v in enumerate(OBSERVABLES) if v.survey == survey]
    return np.asarray(arrays.searched)[:, idx].all(1)


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_each_catalog_keeps_its_surveys_and_marginalises_the_others(name):
    full = pa.Table.from_pandas(make_catalog(200, all_null_rows=0), preserve_index=False)
    t = degrade(full, name)
    kept = SURVEYS_KEPT[name]
    for c in io.MEASUREMENT_BITS:
        had = full.column(c).null_count < full.num_rows
        now = t.column(c).null_count < t.num_rows
        assert now == (had and SURVEY_OF[c] in kept), c
    errors_kept = not name.endswith("no_sigma")
    assert (t.column("parallax_error").null_count < t.num_rows) == errors_kept
    arrays = tokenize(t, Normalisation())
    for survey in io.SURVEYS:
        # a survey the catalog keeps is searched (its nulls are non-detections), one it dropped is marginalised
        assert _searched(arrays, survey).all() == (survey in kept), survey
        assert (~_searched(arrays, survey)).all() == (survey not in kept), survey


def test_lamost_unmatched_is_the_archive_cross_match_without_lamost():
    full = pa.Table.from_pandas(make_catalog(300, all_null_rows=0), preserve_index=False)
    t = degrade(full, "lamost_unmatched")
    for c in io.TMASS_BANDS + io.WISE_BANDS + io.GAIA_BANDS + ("parallax",):
        assert t.column(c).equals(full.column(c))  # values and nulls as they were
    assert all(t.column(c).null_count == t.num_rows for c in io.LAMOST_LABELS + io.LAMOST_ERRORS)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(full, "lamost")
