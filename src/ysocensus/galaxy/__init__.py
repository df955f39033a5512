"""Population synthesis of the Milky Way: smooth components, IMF, young star-forming structure.

``COMPONENTS`` is the one list of component names written to the ``component`` column of the population:
thin1..thin7 (Besançon thin-disk age bins; thin1 holds the stars of the first bin older than
``population.young_field_age_max_myr``), thick, halo, bulge, young_field (the younger part of thin1, a smooth
young field; optionally net of the named structure: ``galaxy.budget``), young_association (distributed young
stars of a star-forming complex) and young_cluster
(stars of a young cluster). See ``galaxy.components`` and ``galaxy.young`` for the physics and references.
"""

import numpy as np

SMOOTH_COMPONENTS = ("thin1", "thin2", "thin3", "thin4", "thin5", "thin6", "thin7", "thick", "halo", "bulge")
YOUNG_COMPONENTS = ("young_field", "young_association", "young_cluster")
COMPONENTS = SMOOTH_COMPONENTS + YOUNG_COMPONENTS
#: the named young structure (complexes, their clusters and associations, literature associations, Radcliffe Wave
#: clouds), kept complete by the population stage: the members the ``structure`` prior is of (``model.priors``)
STRUCTURE_COMPONENTS = ("young_association", "young_cluster")


def structure_members(table) -> np.ndarray:
    """bool per row of a table with a ``component`` column (population, training splits): a member of the named young
    structure (``STRUCTURE_COMPONENTS``)."""
    return np.isin(table.column("component").to_numpy(zero_copy_only=False).astype(str), STRUCTURE_COMPONENTS)


__all__ = ["COMPONENTS", "SMOOTH_COMPONENTS", "STRUCTURE_COMPONENTS", "YOUNG_COMPONENTS", "structure_members"]
