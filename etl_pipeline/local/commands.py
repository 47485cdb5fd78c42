"""`local up | down | status | destroy`: the throwaway MariaDB + PostgreSQL."""

from __future__ import annotations

import json

from etl_pipeline.local.stack import stack_from_env


def register(subparsers) -> None:
    local = subparsers.add_parser("local", help="start/stop the throwaway local MariaDB + PostgreSQL")
    actions = local.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start both servers (reuses running ones), write .env")
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop both servers")
    down.set_defaults(func=_down)
    status = actions.add_parser("status", help="running state and connection URLs (no passwords)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    destroy = actions.add_parser("destroy", help="stop both servers and delete their data")
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
        print(json.dumps(status, indent=2))
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
