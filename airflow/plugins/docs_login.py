"""An Airflow login in front of the dbt docs that the Cosmos plugin serves under /cosmos/.

Cosmos mounts a FastAPI sub-application on the API server (`/cosmos/<project>/dbt_docs`,
`dbt_docs_index.html`, `manifest.json`, `catalog.json`) with no authentication of its own: anyone who
reaches the API server would read the models' SQL and columns. This plugin adds a root middleware to
the API server that, for every request the router would hand to that sub-application, asks Airflow's
own auth manager who the caller is, exactly as the REST API does: the JWT from `Authorization: Bearer`
(what POST /auth/token returns) or else from the `_token` cookie (what the UI's login sets, so the
Cosmos menu entry and its iframe keep working). No token, an invalid, expired or revoked one: 401/403
and nothing from the docs. The user must also be allowed to read the installation
(`is_authorized_view(WEBSITE)`, every role has it). Everything else on the API server is untouched.

Wired by `AIRFLOW__CORE__PLUGINS_FOLDER` pointing at this folder (airflow_local.airflow_env, the image).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

# Where the Cosmos plugin mounts its app (cosmos.plugin.airflow3.CosmosAF3Plugin: url_prefix "/cosmos").
GUARDED_PREFIXES = ("/cosmos",)


def _route_path(scope: dict[str, Any]) -> str:
    """The path the router matches against its routes: the request path without the root path (the
    sub-path of [api] base_url), as starlette's routing computes it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


def _presented_token(request: HTTPConnection) -> str | None:
    """The credential Airflow's own `get_user` would use: an explicit bearer token wins over the
    session cookie."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


async def refusal(request: HTTPConnection) -> Response | None:
    """None when the caller is a logged-in Airflow user allowed to read the installation, else the
    401/403 response to send instead."""
    # imported here: the plugin is loaded by every Airflow process, these only exist in the API server
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    try:
        user = await resolve_user_from_token(_presented_token(request))
    except HTTPException as exc:  # 401 no token / expired, 403 invalid or revoked
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        return JSONResponse({"detail": "Forbidden"}, status_code=403)
    return None


class DocsLoginMiddleware:
    """Pure ASGI middleware: requests under the guarded prefixes pass only with a valid Airflow login."""

    def __init__(self, app: Any, prefixes: tuple[str, ...] = GUARDED_PREFIXES) -> None:
        self.app = app
        self.prefixes = tuple(prefix.rstrip("/") for prefix in prefixes)

    def guarded(self, scope: dict[str, Any]) -> bool:
        path = _route_path(scope)
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        refused = await refusal(HTTPConnection(scope))
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation; 403 before accept
        else:
            await refused(scope, receive, send)


class DocsLoginPlugin(AirflowPlugin):
    name = "docs_login"
    fastapi_root_middlewares = [
        {"name": "docs_login", "middleware": DocsLoginMiddleware, "kwargs": {"prefixes": GUARDED_PREFIXES}}
    ]
