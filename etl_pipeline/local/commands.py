"""`local up | down | status | destroy`: the throwaway MariaDB + PostgreSQL."""

from __future__ import annotations

from etl_pipeline.cli_support import Subparsers, add_command, add_json_flag, print_json
from etl_pipeline.local.stack import stack_from_env


def register(subparsers: Subparsers) -> None:
    local = add_command(
        subparsers,
        "local",
        help="start/stop the throwaway local MariaDB + PostgreSQL",
        description="A throwaway MariaDB (source) and PostgreSQL (target) under .local/, for the demo and "
        "for trying the pipeline; `local up` writes their settings to .env, which every other command reads.",
        examples="""
etl local up          # start both (reuses running ones), write .env
etl local status --json
etl local down        # stop both, keep the data
etl local destroy     # stop both and delete their data
""",
    )
    actions = local.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = add_command(
        actions,
        "up",
        help="start both servers (reuses running ones), write .env",
        examples="etl local up && etl test-connections",
    )
    up.set_defaults(func=_up)
    down = add_command(
        actions, "down", help="stop both servers (their data is kept)", examples="etl local down"
    )
    down.set_defaults(func=_down)
    status = add_command(
        actions,
        "status",
        help="running state and connection URLs (no passwords); exits 1 unless both run",
        examples="etl local status --json | jq '.[].running'",
    )
    add_json_flag(status)
    status.set_defaults(func=_status)
    destroy = add_command(
        actions,
        "destroy",
        help="stop both servers and delete their data",
        examples="etl local destroy && etl local up    # start again from empty servers",
    )
    destroy.set_defaults(func=_destroy)


def _up(args) -> int:
    stack = stack_from_env()
    stack.up()
    _print_status(stack.status())
    print(f"settings written to {stack.env_file}")
    return 0


def _down(args) -> int:
    stopped = stack_from_env().down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args) -> int:
    status = stack_from_env().status()
    if args.json:
        print_json(status)
    else:
        _print_status(status)
    return 0 if all(s["running"] for s in status.values()) else 1


def _destroy(args) -> int:
    stack_from_env().destroy()
    print("local stack stopped and its data deleted")
    return 0


def _print_status(status: dict) -> None:
    for name, info in status.items():
        state = "running" if info["running"] else "stopped"
        print(f"{name:9} {state:8} {info['url']}")
