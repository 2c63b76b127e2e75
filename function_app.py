"""Azure Functions entry point (v2 model): wiring only. The functions live in handlers/."""
import azure.functions as func

from handlers import dispatch, health, intake, reconcile, sweep
from handlers.console import function as console
from handlers.pipeline import functions as actions

app = func.FunctionApp()
app.register_functions(intake.bp)
app.register_functions(dispatch.bp)
app.register_functions(health.bp)
app.register_functions(reconcile.bp)
app.register_functions(sweep.bp)
app.register_functions(actions.bp)
app.register_functions(console.bp)
