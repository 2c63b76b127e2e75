"""The console's one HTTP function. Only this module loads with function_app: the sign-in rules,
pages and templates (routes.py and below) load on the first console request."""
from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()
ROUTE = "console/{*path}"


@bp.route(route=ROUTE, methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def console(req: func.HttpRequest) -> func.HttpResponse:
    from .routes import handle
    return handle(req)
