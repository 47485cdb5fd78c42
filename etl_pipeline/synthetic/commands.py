"""`synth --scale S [--seed N]` builds the synthetic OpenDental source;
`synth mutate --days N [--seed N] [--json]` simulates days of clinic work on it;
`synth upgrade [--to VERSION]` applies a simulated OpenDental version upgrade;
`synth live --rate N [--seconds S]` writes to it like a busy clinic, on the wall clock."""

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
    _register_upgrade(actions)
    _register_live(actions)


def _register_upgrade(actions: Subparsers) -> None:
    upgrade = add_command(
        actions,
        "upgrade",
        help="simulate an OpenDental version upgrade (ALTER TABLEs, two new tables) on the source",
        description="Apply the simulated OpenDental upgrade steps after the source's version, up to --to "
        "(default: the latest). A generated source is at 23.3; etl_pipeline/synthetic/upgrade.py lists "
        "what each step changes. Upgrading to the version the source is at, or an older one, is refused.",
        examples="""
etl synth upgrade                   # every step: 23.3 -> 24.2
etl synth upgrade --to 24.1 --json  # the first step only, its changes as JSON
""",
    )
    upgrade.add_argument(
        "--to",
        dest="to_version",
        metavar="VERSION",
        help="the version to reach (24.1 or 24.2; default the latest)",
    )
    upgrade.add_argument("--seed", type=int, default=1, help="picks the rows of the new tables (default 1)")
    upgrade.add_argument("--json", action="store_true", help="print the upgrade report as JSON")
    upgrade.set_defaults(func=_upgrade)


def _register_live(actions: Subparsers) -> None:
    live = add_command(
        actions,
        "live",
        help="write to the source like a busy clinic for a while (inserts, updates, deletes)",
        description="Insert, update and delete at about --rate statements per second for --seconds, from "
        "several connections, on the wall clock. Some transactions on InnoDB tables stay open for --hold "
        "seconds, so their keys commit after higher ones; the generated source is all MyISAM, --innodb "
        "converts tables first. Ctrl-C stops early.",
        examples="""
etl synth live --rate 20 --seconds 120                          # beside a nightly run
etl synth live --rate 50 --seconds 30 --innodb paysplit,payment --json
""",
    )
    live.add_argument("--rate", type=float, required=True, help="statements per second (at most 500)")
    live.add_argument("--seconds", type=float, default=60.0, help="how long to write (default 60)")
    live.add_argument(
        "--seed", type=int, default=1, help="same seed and same source, same operations (default 1)"
    )
    live.add_argument(
        "--hold",
        type=float,
        default=2.0,
        dest="hold_seconds",
        help="seconds a held InnoDB transaction stays open (default 2)",
    )
    live.add_argument(
        "--innodb",
        metavar="TABLE[,TABLE...]",
        default="",
        help="convert these tables to InnoDB before writing",
    )
    live.add_argument("--json", action="store_true", help="print the live report as JSON")
    live.set_defaults(func=_live)


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


def _upgrade(args) -> int:
    from etl_pipeline.synthetic.build import admin_settings
    from etl_pipeline.synthetic.upgrade import upgrade

    report = upgrade(admin_settings(load_settings()), args.to_version, args.seed)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"upgraded {report.database} from {report.from_version} to {report.to_version}")
    for c in report.changes:
        what = f"{c.old_column} -> {c.column}" if c.old_column else (c.column or f"{c.rows} rows")
        types = f"  {c.old_type or ''} -> {c.new_type or ''}" if c.old_type or c.new_type else ""
        print(f"  {c.version}  {c.table:<17} {c.kind:<14} {what}{types}")
    return 0


def _live(args) -> int:
    from etl_pipeline.synthetic.build import admin_settings
    from etl_pipeline.synthetic.live import convert_to_innodb, run_live

    admin = admin_settings(load_settings())
    tables = [t.strip() for t in args.innodb.split(",") if t.strip()]
    if tables:
        converted = convert_to_innodb(admin, tables)
        if not args.json:
            print(f"converted to InnoDB: {', '.join(converted) or 'none (already InnoDB)'}", flush=True)
    report = run_live(admin, args.rate, args.seconds, args.seed, hold_seconds=args.hold_seconds)
    if args.json:
        print_json(report.to_dict())
        return 0
    out_of_order = ", ".join(f"{t} {report.out_of_order[t]}" for t in report.out_of_order_tables) or "none"
    print(
        f"{report.operations} statements in {report.transactions} transactions over "
        f"{report.elapsed_seconds:.1f} s ({report.held_transactions} held open); out-of-order commits: {out_of_order}"
    )
    print(f"  {'table':<14} {'inserted':>9} {'updated':>9} {'deleted':>9}")
    for table, c in report.counts.items():
        print(f"  {table:<14} {c['inserted']:>9} {c['updated']:>9} {c['deleted']:>9}")
    return 0
