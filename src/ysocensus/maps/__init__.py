"""Maps of YSO ages against the 3D dust, and the census completeness (stage 5).

- ``healpix``: NESTED HEALPix count and median-age maps, two-piece-normal age-bin probabilities, FITS with units.
- ``data``: posteriors joined with catalog positions and population weights / truth, chunk by chunk.
- ``dust_maps``: face-on / edge-on dust with YSOs by age, age against dust density and column.
- ``completeness``: completeness (vs truth) and purity (vs inferred) on the sky and in 1D.
- ``figures``: Mollweide panels (Galactic, l = 0 at the centre) and plotting helpers.
- ``run``: entry points of the ``maps`` and ``completeness`` rules.
"""
