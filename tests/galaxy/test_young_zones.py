"""Zones of young structure (galaxy.young.structure_zones / near_structure / near_young_zones)."""

import numpy as np
import pytest
import torch

from ysocensus.config import section
from ysocensus.galaxy.young import (build_clusters, lbd_to_xyz, near_structure, near_young_zones,
                                    structure_zones)


def test_zones_are_the_associations_at_n_sigma():
    cl = build_clusters(section("population")["young"], 3)
    centres, radii = structure_zones(cl, 2.0)
    assoc = cl.kind == 0
    assert 0 < assoc.sum() < len(cl)  # clusters (kind 1) are not zones
    assert centres.shape == (assoc.sum(), 3) and radii.shape == (assoc.sum(),)
    assert np.allclose(centres[:, 0], cl.x[assoc]) and np.allclose(radii, 2.0 * cl.scale_pc[assoc])
    # rho Oph (the ophiuchus complex: sigma 4 pc at l = 353, b = 17, 138 pc) is one of them
    i = cl.complex_name.index("ophiuchus")
    assert np.allclose(centres[list(np.flatnonzero(assoc)).index(i)], lbd_to_xyz(353.0, 17.0, 138.0))
    assert structure_zones(cl, 0.0)[1].size == 0


def test_membership_numpy_and_torch_agree():
    centres, radii = np.array([[100.0, 0.0, 0.0], [0.0, -50.0, 10.0]]), np.array([10.0, 5.0])
    pts = np.array([[100.0, 0.0, 0.0], [109.9, 0.0, 0.0], [110.1, 0.0, 0.0], [0.0, -50.0, 14.9],
                    [0.0, -50.0, 15.1], [0.0, 0.0, 0.0]])
    expect = [True, True, False, True, False, False]
    assert near_structure(*pts.T, centres, radii).tolist() == expect
    assert near_structure(*torch.as_tensor(pts).T, centres, radii).tolist() == expect
    # pad widens every zone; no zones: nothing is near, in the points' shape
    assert near_structure(*pts.T, centres, radii, pad=0.5).tolist() == [True, True, True, True, True, False]
    assert near_structure(*pts.T, np.zeros((0, 3)), np.zeros(0)).tolist() == [False] * 6
    none = near_structure(*torch.as_tensor(pts).T, np.zeros((0, 3)), np.zeros(0))
    assert none.dtype == torch.bool and not none.any()


def test_near_young_zones_of_a_population_config():
    pop = section("population")
    centres, radii = near_young_zones(pop, 1)
    assert pop["near_young_sigmas"] == 2.0 and pop["thinning"]["near_young"] == 0.1
    cl = build_clusters(pop["young"], 1)
    assert radii.size == int((cl.kind == 0).sum()) > 50
    # the association centres do not depend on the seed
    assert np.array_equal(near_young_zones(pop, 2)[0], centres)
    # switched off: sigmas 0, no young structure, or a near fraction that changes nothing
    for over in ({"near_young_sigmas": 0.0}, {"young": {"enabled": False}},
                 {"thinning": {"near_young": 0.001}}):
        assert near_young_zones(section("population", over), 1)[1].size == 0, over


def test_near_young_sigmas_is_validated():
    with pytest.raises(ValueError, match="near_young_sigmas"):
        section("population", {"near_young_sigmas": -1.0})
