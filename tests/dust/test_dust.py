"""The synthetic 3D dust field, its line-of-sight A_V, calibration, persistence and the dustmaps adapter."""

import numpy as np
import pytest

from ysocensus.dust import DustField, DustmapsAV, DustmapsMissing, run_dust, dust_model
from ysocensus.dust.field import cloud_columns
from ysocensus.config import section
from ysocensus.galaxy.young import complexes_from_config, lbd_to_xyz

SMALL = {"grid_step_pc": 20.0, "grid_extent_xy_pc": 1100.0, "grid_extent_z_pc": 300.0, "los_nside": 16,
         "los_distance_max_pc": 1100.0}


@pytest.fixture(scope="module")
def field():
    cfg = section("dust", SMALL)
    return DustField.build(cfg, complexes_from_config(section("population")["young"]), 42)


def test_grid_interface(field):
    nx, ny, nz = field.density.shape
    assert (nx, ny, nz) == (field.x_pc.size, field.y_pc.size, field.z_pc.size)
    assert field.density.dtype == np.float32 and np.all(field.density >= 0)
    assert field.x_pc[0] == -1100.0 and field.z_pc[-1] == 300.0
    # density_at agrees with the grid at a node and falls back to the smooth disk outside
    i, j, k = 40, 60, 10
    assert field.density_at(field.x_pc[i], field.y_pc[j], field.z_pc[k]) == pytest.approx(field.density[i, j, k], rel=1e-5)
    assert np.isfinite(field.density_at(5000.0, 0.0, 0.0))


def test_av_monotonic_along_every_sight_line(field):
    assert np.all(np.diff(field.los_av, axis=1) >= 0)
    rng = np.random.default_rng(0)
    l, b = rng.uniform(0, 360, 2000), np.rad2deg(np.arcsin(rng.uniform(-1, 1, 2000)))
    d = np.linspace(0, 1500, 80)
    av = field.av(l[:, None], b[:, None], d[None, :])
    assert av.shape == (2000, 80)
    assert np.all(np.diff(av, axis=1) >= 0)
    assert np.all(av[:, 0] == 0)


def test_calibration(field):
    """Mid-plane ~0.7-1 mag/kpc (local 3D maps: Lallement et al. 2019, Green et al. 2019) and columns of
    a few hundredths of a mag towards the poles (Schlegel et al. 1998; Planck 2016: E(B-V) ~ 0.01-0.03)."""
    s = field.summary()
    assert 0.5 < s["midplane_av_per_kpc_median"] < 1.2
    assert 0.02 < s["high_latitude_av_median"] < 0.15


def test_clouds_at_star_forming_regions(field):
    # through Taurus (140 pc) and Ophiuchus (138 pc) the extinction jumps; the off-cloud control does not
    for l, b, d in [(172.0, -15.0, 140.0), (353.0, 17.0, 138.0)]:
        before, after = field.av(l, b, d - 30), field.av(l, b, d + 30)
        assert after - before > 1.0
        off = field.av(l + 40.0, -b, d + 30) - field.av(l + 40.0, -b, d - 30)
        assert off < 0.5 * (after - before)


def test_cloud_columns_are_the_exact_line_integral():
    # a Gaussian cloud's density C/(sqrt(2 pi) s) exp(-|r - c|^2 / 2 s^2) integrated along rays by the trapezoid rule
    cloud = np.array([[100.0, 30.0, -20.0, 3.0, 7.0]])
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 3)) * 0.05 + np.array([100.0, 30.0, -20.0]) / np.linalg.norm([100.0, 30.0, -20.0])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    d = rng.uniform(80, 140, 50)
    s = np.linspace(0, 1, 20001)[None, :] * d[:, None]
    r2 = ((s[..., None] * v[:, None, :] - cloud[0, :3]) ** 2).sum(-1)
    rho = 7.0 / (np.sqrt(2 * np.pi) * 3.0) * np.exp(-r2 / (2 * 9.0))
    numeric = np.trapezoid(rho, s, axis=1)
    assert np.allclose(cloud_columns(cloud, v, d), numeric, rtol=1e-5, atol=1e-9)
    # through the centre, the whole column C once the ray has passed the cloud
    c = cloud[0, :3] / np.linalg.norm(cloud[0, :3])
    assert cloud_columns(cloud, c[None], np.array([500.0]))[0] == pytest.approx(7.0, rel=1e-9)


def test_cloud_narrower_than_the_grid_keeps_its_size():
    """ρ Oph's cloud (radius 4 pc, sigma 2 pc: galaxy.young.COMPLEXES) on a 20 pc grid: a star 6 pc in front of its
    centre sees almost none of it, one 6 pc behind almost all, and one 10 pc off the sight line through the
    centre a fraction exp(-10^2 / 2 sigma^2) ~ 4e-6 (a grid-wide cloud would give all three about half)."""
    cfg = section("dust", {**SMALL, "turbulence_sigma_ln": 0.0})
    oph = [c for c in complexes_from_config(section("population")["young"]) if c.name == "ophiuchus"]
    f = DustField.build(cfg, oph, 0)
    (cx, cy, cz, sig, col), = f.clouds
    assert sig == pytest.approx(2.0) and col == pytest.approx(10.0)
    d0 = float(np.sqrt(cx * cx + cy * cy + cz * cz))
    l, b = np.rad2deg(np.arctan2(cy, cx)), np.rad2deg(np.arcsin(cz / d0))
    smooth = f.av(l + 60.0, b, d0 + 6)  # the same path length away from any cloud
    front, behind = f.av(l, b, d0 - 6) - smooth, f.av(l, b, d0 + 6) - smooth
    assert front < 0.02 * col and behind > 0.97 * col
    off = f.av(l, b + np.rad2deg(10.0 / d0), d0 + 30) - f.av(l + 60.0, b, d0 + 30)
    assert abs(off) < 0.05


def test_reproducible_and_seeded(field):
    cfg = section("dust", SMALL)
    cx = complexes_from_config(section("population")["young"])
    again = DustField.build(cfg, cx, 42)
    assert np.array_equal(again.density, field.density)
    other = DustField.build(cfg, cx, 43)
    assert not np.array_equal(other.density, field.density)
    smooth = DustField.build({**cfg, "turbulence_sigma_ln": 0.0}, [], 42)
    assert smooth.density.std() < field.density.std()


def test_save_load_and_build_dust(tmp_path, field):
    path = tmp_path / "dust.npz"
    field.save(path)
    back = DustField.load(path)
    assert np.array_equal(back.los_av, field.los_av) and np.array_equal(back.density, field.density)
    assert np.array_equal(back.clouds, field.clouds) and len(field.clouds) > 0
    assert back.av(10.0, 0.0, 500.0) == field.av(10.0, 0.0, 500.0)
    meta = tmp_path / "dust.json"
    run_dust(section("dust", {**SMALL, "grid_step_pc": 50.0}), section("population"), 1, tmp_path / "b.npz", meta)
    assert meta.exists() and (tmp_path / "b.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz", "dust.json", "dust.npz"]
    assert isinstance(dust_model(section("dust"), path), DustField)
    # a field saved before the clouds were resolved (no "clouds" array): read as it was, the clouds in los_av
    with np.load(path) as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if k != "clouds"})
    old = DustField.load(tmp_path / "old.npz")
    v = np.array([lbd_to_xyz(353.0, 17.0, 1.0)])
    assert old.clouds.shape == (0, 5)
    assert old.av(353.0, 17.0, 200.0) == pytest.approx(
        field.av(353.0, 17.0, 200.0) - cloud_columns(field.clouds, v, np.array([200.0]))[0], abs=1e-4)
    (tmp_path / "old.npz").unlink()
    with pytest.raises(FileNotFoundError, match="dust rule"):
        DustField.load(tmp_path / "missing.npz")


def test_negative_distance_rejected(field):
    with pytest.raises(ValueError, match="negative"):
        field.av(0.0, 0.0, -1.0)


class FakeQuery:
    """Stands in for dustmaps' Edenhofer2023Query: 'extinction' = 1e-3 per pc, times |sin b| + 0.1."""

    def __init__(self):
        self.calls = 0

    def __call__(self, coords):
        self.calls += 1
        d = coords.distance.pc
        return 1e-3 * d * (np.abs(np.sin(coords.b.rad)) + 0.1)


def test_dustmaps_adapter_with_fake():
    q = FakeQuery()
    ad = DustmapsAV("edenhofer2023", av_per_unit=2.8, query=q)
    l = np.array([0.0, 90.0, 180.0])
    b = np.array([0.0, 30.0, -90.0])
    d = np.array([500.0, 500.0, 500.0])
    av = ad.av(l, b, d)
    assert av.shape == (3,) and q.calls == 1
    assert av == pytest.approx(2.8e-3 * 500 * (np.abs(np.sin(np.deg2rad(b))) + 0.1), rel=1e-5)
    # distances are clipped into the map's range: constant beyond, and A_V never decreases
    far = ad.av(np.zeros(3), np.zeros(3), np.array([1000.0, 1250.0, 5000.0]))
    assert far[1] == far[2] and np.all(np.diff(far) >= 0)
    with pytest.raises(ValueError, match="negative"):
        ad.av(0.0, 0.0, -5.0)


def test_dustmaps_selected_by_config_and_missing_data_message(monkeypatch):
    ad = dust_model(section("dust", {"model": "dustmaps"}), "unused.npz")
    assert isinstance(ad, DustmapsAV) and ad.map_name == "edenhofer2023"
    import importlib

    def broken(name, *a, **k):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(DustmapsMissing, match="dustmaps"):
        ad.av(0.0, 0.0, 100.0)
    with pytest.raises(ValueError, match="not one of"):
        DustmapsAV("sfd")
    with pytest.raises(ValueError):
        section("dust", {"model": "planck"})
