"""``dime-pipeline config``: validate a study config and write it with every key spelled out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="validate a config and write the resolved YAML",
        description="Validate a study config (YAML file, or JSON text with --json) and print it, "
        "or write it to --out, with every default filled in.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="YAML config file (default: the packaged one)")
    source.add_argument("--json", dest="json_text", help="the config as JSON text")
    parser.add_argument("--out", type=Path, help="write the resolved YAML here (atomically)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.config import dump_config, load_config, validate_config
    from dime_pipeline.errors import UserError
    from dime_pipeline.textio import check_outputs_spare_inputs, write_text_atomic

    if args.json_text is not None:
        try:
            raw = json.loads(args.json_text)
        except json.JSONDecodeError as error:
            raise UserError(f"--json is not valid JSON: {error}") from None
        config = validate_config(raw)
    else:
        config = load_config(args.config)
    text = dump_config(config)
    if args.out is None:
        print(text, end="")
    else:
        check_outputs_spare_inputs([args.out], [args.config])
        write_text_atomic(args.out, text)
