"""The ``ysocensus`` command: the package's tools outside Snakemake.

    ysocensus tiles config/config.yaml      # tiles and job chunks a config selects
    ysocensus schema catalog                # columns, dtypes and units of a stage's Parquet files
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__


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


def load_config(path: str) -> dict:
    """Read a workflow config file and validate it (filling defaults) with the workflow's schema.

    The schema is looked up in the repository that holds the config file (``config/x.yaml`` →
    ``workflow/schemas/config.schema.yaml``), the same one the Snakefile validates with.
    """
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    config_path = Path(path).resolve()
    schema = config_path.parent.parent / "workflow" / "schemas" / "config.schema.yaml"
    if not schema.exists():
        raise FileNotFoundError(f"{path}: no workflow schema at {schema} (is this a config/ file of a ysocensus checkout?)")
    with open(config_path) as fh:
        config = yaml.safe_load(fh) or {}
    validate(config, str(schema))
    return config


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from snakemake_interface_common.exceptions import WorkflowError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, WorkflowError) as exc:
        print(f"ysocensus {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
