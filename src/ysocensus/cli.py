"""The ``ysocensus`` command: the package's tools outside Snakemake.

    ysocensus tiles config/config.yaml      # tiles and job chunks a config selects
    ysocensus schema catalog                # columns, dtypes and units of a stage's Parquet files
    ysocensus infer CATALOG --model results/model/model.ckpt --output OUT.parquet
                                            # posteriors for a real (or simulated) catalog
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__, io
from .model.priors import ALL_PRIORS


def _tiles(args: argparse.Namespace) -> int:
    from .sky import Tiling

    config = load_config(args.config)
    tiling = Tiling.from_config(config["sky"])
    print(f"nside={tiling.nside}: {len(tiling.tiles)} of {tiling.npix} tiles selected, "
          f"{len(tiling.chunks)} job chunk(s) of up to {tiling.tiles_per_job} tiles")
    if args.verbose:
        for chunk in tiling.chunks:
            print(f"chunk {chunk}: tiles {list(tiling.tiles_in_chunk(chunk))}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .io import SCHEMAS

    schema = SCHEMAS[args.table]
    width = max(len(c.name) for c in schema.columns)
    for c in schema.columns:
        null = "null ok" if c.nullable else ""
        print(f"{c.name:<{width}}  {str(c.dtype):<8} {c.unit:<16} {null:<8} {c.description}")
    return 0


def _infer(args: argparse.Namespace) -> int:
    from .inference import InferOptions, infer_catalog
    from .inference.formats import file_format
    from .inference.model_adapter import load_sampler
    from .logs import configure

    configure(args.log)
    second = None if str(args.second_threshold_myr).lower() == "none" else float(args.second_threshold_myr)
    opts = InferOptions(n_samples=args.n_samples, batch_size=args.batch_size,
                        young_threshold_myr=args.young_threshold_myr, second_threshold_myr=second,
                        save_samples=args.save_samples, seed=args.seed,
                        on_invalid="raise" if args.strict else "flag", fill_errors=args.fill_errors,
                        searched=tuple(s for part in args.searched for s in part.split(",") if s),
                        gaia_release=args.gaia_release, carry=tuple(args.carry), progress=not args.no_progress,
                        sample_unobserved=not args.skip_unobserved, positions=not args.no_positions)
    file_format(args.output, output=True)  # an unknown extension fails before the model loads
    sampler = _load_model(args, load_sampler)
    report = infer_catalog(args.catalog, args.output, sampler, opts, samples_output=args.samples_output)
    print(f"{args.output}: {report.rows} rows ({', '.join(f'{k} {v}' for k, v in sorted(report.status.items()))}) "
          f"in {report.seconds:.1f} s, {report.stars_per_s:.0f} stars/s")
    if report.conditioning:
        print("conditioning (rows per survey and rule; see the 'conditioning' column): " + "; ".join(
            f"{s} " + ", ".join(f"{r} {n}" for r, n in sorted(rules.items()))
            for s, rules in report.conditioning.items()))
    if report.unread_bp:
        print(f"{report.unread_bp} rows: G_BP fainter than {sampler.bp_max_mag:g} mag not read (biased bright in the "
              "archive; the model was trained without it; see the 'note' column)")
    if report.filled_errors:
        print("uncertainties filled from survey error models (see the 'note' column): "
              + ", ".join(f"{k} ({v} rows)" for k, v in sorted(report.filled_errors.items())))
    return 0


class ModelFileError(ValueError):
    """The --model file is not a usable checkpoint (message: one line naming the file)."""


def _load_model(args: argparse.Namespace, load_sampler):
    """The model as a sampler; a truncated, corrupted or foreign file is one line naming it, not a traceback.

    ``model.checkpoint`` already turns every such failure into a ``CheckpointError`` naming the file, but
    with the loader's own message inside, which for torch's unpickler runs to paragraphs.
    """
    import warnings

    from .inference.formats import one_line
    from .model.checkpoint import CheckpointError

    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle, before the error that says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return load_sampler(args.model, device=args.device, threads=args.threads, n_steps=args.n_steps,
                                method=args.method, rows_per_batch=args.rows_per_batch, prior=args.prior,
                                field=args.field, field_precision=args.field_precision, ensemble=args.ensemble)
    except CheckpointError as exc:
        raise ModelFileError(one_line(exc)) from None


def load_config(path: str) -> dict:
    """Read a workflow config file and validate it (filling defaults) with the package's config schema, the same
    file the Snakefile validates with (``ysocensus.config.schema_path``)."""
    from pathlib import Path

    import yaml

    from .config import schema_path, validate_config

    config_path = Path(path).resolve()
    schema = schema_path("config")
    with open(config_path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config, schema)


def build_parser() -> argparse.ArgumentParser:
    from .io import SCHEMAS

    parser = argparse.ArgumentParser(
        prog="ysocensus",
        description="A census of young stars by simulation-based inference. The workflow itself runs "
                    "with `snakemake` (see README.md); this command holds the tools that are useful "
                    "outside it.")
    parser.add_argument("--version", action="version", version=f"ysocensus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tiles", help="list the HEALPix tiles and job chunks a config file selects")
    p.add_argument("config", help="a config file, e.g. config/config.yaml")
    p.add_argument("-v", "--verbose", action="store_true", help="list the tiles of every chunk")
    p.set_defaults(func=_tiles)

    p = sub.add_parser("schema", help="print the columns (dtype, unit) of a stage's Parquet files")
    p.add_argument("table", choices=sorted(SCHEMAS), help="which table")
    p.set_defaults(func=_schema)

    p = sub.add_parser(
        "infer", help="posterior summaries for every row of a Gaia/2MASS/WISE/LAMOST catalog",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw posterior samples of (log10 age, initial mass, [Fe/H], distance, A_V) for every "
                    "row of CATALOG with a trained model and write their 16/50/84th percentiles and "
                    "P(age < threshold), one row out per row in (the schema of `ysocensus schema posterior`).",
        epilog="""CATALOG: Parquet, FITS, VOTable (.vot, .xml: the Gaia archive's default), ECSV or CSV (.gz, .bz2
allowed) with archive column names (case-insensitive):
  required   source_id; l, b (Galactic, deg) or ra, dec (ICRS, deg)
  Gaia DR3   phot_g_mean_mag, phot_bp_mean_mag, phot_rp_mean_mag with phot_*_mean_flux_over_error
             (or phot_*_mean_mag_error in mag, or phot_*_mean_flux + phot_*_mean_flux_error);
             parallax, parallax_error (mas)
  2MASS      j_m, h_m, ks_m with j_msigcom, h_msigcom, ks_msigcom
  AllWISE    w1mpro..w4mpro with w1sigmpro..w4sigmpro
  LAMOST     teff_lamost, logg_lamost, feh_lamost, ewli, ewha with teff_err_lamost, logg_err_lamost,
             feh_err_lamost, ewli_err, ewha_err
Common other names are read too (ysocensus.inference.columns.ALIASES): VizieR's Source, RA_ICRS, DE_ICRS,
Plx, e_Plx, Gmag, e_Gmag, BPmag, RPmag, FG, RFG, Jmag, e_Jmag, Kmag, W1mag, e_W1mag, ...; the Gaia
archive's AllWISE w1mpro_error..w4mpro_error; LAMOST's teff, logg, feh and their _err; TOPCAT's _1, _2
suffixes of a join (ra_1 over ra_2). The log says which columns were read for which survey (and under
which name), which were ignored, and warns about an ignored column that looks like a quantity the catalog
lacks (g_mag, plx_err): rename such a column. The summary is also stored in the output's metadata.
Any survey may be absent or null per row. A survey whose columns are absent, or null for a star, is
not conditioned on (marginalised), unless its ID column is present (tmass_id, allwise_id, obsid, ...)
or --searched names it: then "no values" is read as "searched and not detected". A value without its
uncertainty is read as a value alone (the model was trained to); no uncertainty is invented unless
--fill-errors asks for the survey error models. The 'conditioning' column says, per star and survey,
which rule applied; 'ess' is the effective sample size of the population correction (status low_ess
when it is below 10). Other columns are ignored (--carry copies them to the output). A row with bad
input (non-numeric, inf, uncertainty <= 0, sentinel magnitudes, no position, ra outside 0..360 or dec
outside -90..90 deg, a parallax more than 5 sigma below zero) gets status invalid_input and a note
naming the column (--strict: stop with an error naming column and rows); a row with nothing observed
gets status prior_only; a source_id repeating an earlier row's is noted (still inferred). Every row in
gives a row out.

OUTPUT: the format its name says: .parquet, .fits/.fit (binary table, units in TUNITn, the P(young)
thresholds in the header as PYNG_MYR and PYNG2MYR), .vot/.xml/.votable (VOTable, thresholds as PARAMs),
.ecsv, .csv (values only). ra, dec, l, b (deg) follow the posterior columns unless --no-positions.
The output is written atomically: an interrupted run leaves no partial file, and hidden temporary files
of a killed run are removed by the next one.""")
    p.add_argument("catalog", help="input catalog: .parquet, .fits, .vot/.xml, .ecsv or .csv")
    p.add_argument("--model", required=True, help="trained model checkpoint, e.g. results/model/model.ckpt")
    p.add_argument("--output", "-o", required=True,
                   help="output file of posterior summaries; its extension picks the format: .parquet, .fits, "
                        ".vot/.xml/.votable, .ecsv, .csv")
    p.add_argument("--n-samples", type=int, default=64, help="posterior samples per star (default 64)")
    p.add_argument("--batch-size", type=int, default=4096, help="rows read and sampled at a time (default 4096)")
    p.add_argument("--young-threshold-myr", type=float, default=50.0,
                   help="p_young = P(age < this), in Myr (default 50)")
    p.add_argument("--second-threshold-myr", default="10",
                   help="p_young_2 = P(age < this), in Myr, or 'none' (default 10)")
    p.add_argument("--save-samples", action="store_true", help="also write the raw samples (a side file)")
    p.add_argument("--samples-output", default=None,
                   help="where the raw samples go, a .parquet file (default: OUTPUT's name with _samples.parquet "
                        "for its extension)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--strict", action="store_true", help="stop at the first invalid row instead of flagging it")
    p.add_argument("--fill-errors", action="store_true",
                   help="fill missing uncertainties from the survey error models (default: values without an "
                        "uncertainty are read without one)")
    p.add_argument("--searched", nargs="+", default=[], metavar="SURVEY",
                   help="surveys (gaia tmass wise lamost) cross-matched for every row: a star without their values is "
                        "a non-detection, not a gap (default: only surveys whose ID column is in the catalog)")
    p.add_argument("--gaia-release", default="DR3", choices=list(io.GAIA_RELEASES), type=str.upper,
                   help="Gaia data release of the photometry, for rows without a gaia_release column value "
                        "or a Gaia archive designation ('Gaia DR2 ...', which names the release) "
                        "(default DR3; EDR3's photometry is DR3's). The model was trained on DR3's photometric "
                        "uncertainties: a DR2 catalog's are not read (its bands are read as values alone)")
    p.add_argument("--skip-unobserved", action="store_true",
                   help="do not sample rows with nothing observed (status prior_only, null quantiles)")
    p.add_argument("--carry", nargs="+", default=[], metavar="COLUMN",
                   help="input columns to copy unchanged to the output (ra, dec, l, b are written anyway)")
    p.add_argument("--no-positions", action="store_true",
                   help="do not write ra, dec, l, b (deg; the catalog's, or computed from the other pair)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model runs (default auto: the GPU when there is one)")
    p.add_argument("--prior", choices=ALL_PRIORS, default=None,
                   help="posterior under the Galactic population (prior-ratio resampled; the model's default: a star "
                        "drawn from the sky), under the simulated young-enriched training mix, or of a member of the "
                        "named young structure (structure: for a membership list of associations or clusters; "
                        "p_young is then not a classifier)")
    p.add_argument("--field", choices=("posterior_field", "transformer"), default=None,
                   help="velocity field that draws the posterior: the light posterior field (fast; the model's default "
                        "when it has one) or the Transformer decoder")
    p.add_argument("--field-precision", choices=("auto", "float32", "bfloat16"), default=None,
                   help="precision of the posterior field's MLP: auto (the model's default) = bfloat16 where the CPU "
                        "has bf16 matrix units (AMX, avx512_bf16) or on a GPU, else float32; float32 gives the same "
                        "samples on every machine")
    p.add_argument("--ensemble", choices=("mixture", "consensus"), default=None,
                   help="for a model of several networks (train.ensemble): the mixture of their posteriors (costs one "
                        "network) or their consensus flow (costs all of them); default: the model's own setting")
    p.add_argument("--n-steps", type=int, default=None, help="ODE steps (default: the model's own setting)")
    p.add_argument("--method", default=None, help="ODE solver: euler, heun, midpoint (default: the model's)")
    p.add_argument("--rows-per-batch", type=int, default=None,
                   help="stars x samples per network call (default: the model's own, 4096)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log", default=None, help="also write the log to this file")
    p.set_defaults(func=_infer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as exc:
        print(f"ysocensus {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ysocensus {args.command}: interrupted (no partial output written)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
