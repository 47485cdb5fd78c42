"""`synth --scale S [--seed N]` builds the synthetic OpenDental source;
`synth mutate --days N [--seed N] [--json]` simulates days of clinic work on it."""

from __future__ import annotations

from etl_pipeline.cli_support import Subparsers, add_command, print_json
from etl_pipeline.settings import load_settings


def register(subparsers: Subparsers) -> None:
    synth = add_command(
        subparsers,
        "synth",
        help="build the synthetic OpenDental source database (36 tables) or mutate it",
        description="Build the synthetic OpenDental source with the admin connection (SOURCE_ADMIN_USER). "
        "Scale 1.0 is a mid-size clinic (~35k patients, ~9.5M rows); 0.01 takes a second.",
        examples="""
etl synth --scale 0.05              # a small clinic, seed 42
etl synth --scale 1 --seed 7        # a mid-size clinic; same seed, same database
etl synth mutate --days 3           # three days of clinic work on it
etl synth mutate --days 1 --json    # and the per-table counts
""",
    )
    synth.add_argument("--scale", default="1.0", help="size relative to a mid-size clinic (default 1.0)")
    synth.add_argument("--seed", type=int, default=42, help="same seed, same database (default 42)")
    synth.set_defaults(func=_generate)
    actions = synth.add_subparsers(dest="action", metavar="ACTION")
    mutate = add_command(
        actions,
        "mutate",
        help="simulate N days of clinic work (inserts, updates, hard and soft deletes)",
        description="Simulate N days of clinic work on the existing source. The simulated clock starts the "
        "day after the latest cursor value in the source; the wall clock does not matter.",
        examples="""
etl synth mutate --days 1
etl synth mutate --days 30 --seed 8 --json | jq '.patient'
""",
    )
    mutate.add_argument("--days", type=int, required=True, help="number of simulated days (1-366)")
    mutate.add_argument(
        "--seed", type=int, default=7, help="same seed and same source, same changes (default 7)"
    )
    mutate.add_argument("--json", action="store_true", help="print the per-table counts as JSON")
    mutate.set_defaults(func=_mutate)


def _generate(args) -> int:
    from etl_pipeline.synthetic.build import admin_settings, check_scale, generate

    scale = check_scale(args.scale)
    admin = admin_settings(load_settings())
    print(f"building synthetic source {admin.display} (scale {scale}, seed {args.seed})", flush=True)
    generate(admin, scale, args.seed)
    return 0


def _mutate(args) -> int:
    from etl_pipeline.synthetic.build import admin_settings
    from etl_pipeline.synthetic.simulate import mutate

    counts = mutate(admin_settings(load_settings()), args.days, args.seed, quiet=args.json)
    if args.json:
        print_json(counts)
    return 0
