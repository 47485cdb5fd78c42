"""`docs generate | serve`: the dbt docs site of the marts.

`docs generate` runs `dbt docs generate` (index.html, manifest.json, catalog.json under
dbt_dental_models/target); `docs serve` serves that directory over HTTP on localhost, the way
`dbt docs serve` does, without needing a dbt process to stay up.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from etl_pipeline.cli_support import Subparsers, add_command
from etl_pipeline.dbt_runner import DBT_TARGET_DIR, run_dbt
from etl_pipeline.errors import ConfigError

DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def register(subparsers: Subparsers) -> None:
    docs = add_command(
        subparsers,
        "docs",
        help="build or serve the dbt docs site of the marts",
        examples="""
etl docs generate
etl docs serve --generate --port 8081
""",
    )
    actions = docs.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = add_command(
        actions,
        "generate",
        help="dbt docs generate (needs the analytics database)",
        examples="etl docs generate --target prod",
    )
    generate.add_argument("--target", help="dbt target (default: local, or prod when ETL_ENVIRONMENT=prod)")
    generate.set_defaults(func=_generate)
    serve = add_command(
        actions,
        "serve",
        help="serve the generated site on http://HOST:PORT/",
        examples="""
etl docs serve                      # http://127.0.0.1:8080/
etl docs serve --generate --host 0.0.0.0 --port 8081
""",
    )
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--generate", action="store_true", help="run docs generate first")
    serve.set_defaults(func=_serve)


def generate_docs(target: str | None = None) -> Path:
    """Build the docs site; return the directory that holds it."""
    run_dbt(["docs", "generate"], target=target)
    return DBT_TARGET_DIR


def docs_server(
    port: int = 8080, host: str = "127.0.0.1", directory: Path = DBT_TARGET_DIR
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the generated site (not started: call serve_forever())."""
    missing = [name for name in DOCS_FILES if not (directory / name).is_file()]
    if missing:
        raise ConfigError(
            f"docs site not built: {', '.join(missing)} missing in {directory}; run `etl docs generate` first"
        )
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve docs on {host}:{port}: {exc.strerror}") from None


def serve_in_thread(port: int = 0, host: str = "127.0.0.1") -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start the docs server in a daemon thread; return it and its URL (port 0 = any free port)."""
    server = docs_server(port, host)
    threading.Thread(target=server.serve_forever, name="docs-server", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _generate(args) -> int:
    directory = generate_docs(args.target)
    print(f"docs site built in {directory}")
    return 0


def _serve(args) -> int:
    if args.generate:
        generate_docs()
    server = docs_server(args.port, args.host)
    print(f"serving dbt docs on http://{args.host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
