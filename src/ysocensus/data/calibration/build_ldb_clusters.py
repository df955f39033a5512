"""How ldb_clusters.csv was made: python build_ldb_clusters.py GAIA_HRDS_GIT_DIR HEADER_CSV OUT_CSV.

Reads Gaia Collaboration 2018 (Babusiaux) Table A1a as cross-matched to Gaia DR2 in the git repository
stephtdouglas/Gaia_HRDs (GaiaHRD_tab1a_DR2xmatch.csv, GaiaHRD_tab2.csv at HEAD) and writes the members of the
lithium-depletion-boundary clusters in the column layout of HEADER_CSV (data/real/old_clusters.csv). Not part of
the workflow; kept so the file can be rebuilt and checked (SOURCES.md)."""
import io, subprocess, sys
import numpy as np, pandas as pd
R, header_csv, out = sys.argv[1:4]
show = lambda f: io.StringIO(subprocess.check_output(["git", "-C", R, "show", f"HEAD:{f}"]).decode())
t = pd.read_csv(show("GaiaHRD_tab1a_DR2xmatch.csv"))
tab2 = pd.read_csv(show("GaiaHRD_tab2.csv"))
header = open(header_csv).readline().strip().split(",")
# cluster (Table A1a name) -> (group, LDB age, lo, hi, reference)
LDB = {
    "IC2602": ("IC 2602", 46.0, 41.0, 52.0,
               "Dobbie, Lodieu & Sharp 2010 (MNRAS 409, 1002; Li depletion boundary 46+6-5 Myr)"),
    "IC2391": ("IC 2391", 50.0, 45.0, 55.0,
               "Barrado y Navascues, Stauffer & Jayawardhana 2004 (ApJ 614, 386; Li depletion boundary 50+-5 Myr)"),
    "alphaPer": ("alpha Per", 90.0, 80.0, 100.0,
                 "Stauffer et al. 1999 (ApJ 527, 219; Li depletion boundary 90+-10 Myr)"),
    "Pleiades": ("Pleiades", 125.0, 117.0, 133.0,
                 "Stauffer, Schultz & Kirkpatrick 1998 (ApJ 499, L199; Li depletion boundary 125+-8 Myr)"),
    "Blanco1": ("Blanco 1", 126.0, 112.0, 139.0,
                "Juarez et al. 2014 (ApJ 795, 143; Li depletion boundary 126+13-14 Myr)"),
}
rows = []
for name, (group, age, lo, hi, ref) in LDB.items():
    m = t[(t.Cluster == name) & (t.Source == t.source_id)]
    n_all = len(m)
    m = m.dropna(subset=["phot_bp_mean_mag", "phot_rp_mean_mag", "parallax"])
    p2 = tab2[tab2.Cluster == name].iloc[0]
    print(name, n_all, "->", len(m), "DM", p2["DM"], "feh", p2["[Fe/H]"], "E(B-V)", p2["E(B−V)"])
    d = pd.DataFrame({c: np.nan for c in header}, index=m.index)
    d["source_id"] = m.source_id.astype("int64"); d["gaia_release"] = "DR2"
    for c in ("ra", "dec", "parallax", "parallax_error", "pmra", "pmdec", "phot_g_mean_mag", "phot_bp_mean_mag",
              "phot_rp_mean_mag", "bp_rp"):
        d[c] = m[c]
    d["phot_flags"] = "duplicated_source=" + m.duplicated_source.astype(int).astype(str)
    d["group"] = group; d["subgroup"] = "Gaia Collab.+2018 Table A1a"
    d["age_myr"], d["age_myr_lo"], d["age_myr_hi"] = age, lo, hi
    d["age_ref"] = ref + f"; Gaia Collab.+2018 isochrone log t={p2['log(age)']}"
    d["member_ref"] = "GaiaCollab2018_Babusiaux (A&A 616, A10, Table A1a)"
    feh = str(p2["[Fe/H]"]).replace("−", "-")
    d["member_flag"] = (f"DM={p2['DM']};feh={feh};ebv={p2['E(B−V)']};plx_opt=" + m.plx.map("{:.3f}".format)
                        + ";e_plx_opt=" + m.e_plx.map("{:.3f}".format))
    for b in ("g", "bp", "rp"):
        d[f"phot_{b}_mean_flux_over_error"] = (m[f"phot_{b}_mean_flux"] / m[f"phot_{b}_mean_flux_error"]).round(4)
    rows.append(d)
pd.concat(rows)[header].to_csv(out, index=False)
