"""Azure Functions entry point (v2 model): wiring only. The functions live in handlers/."""
import azure.functions as func

from handlers import action_functions, dispatch, intake

app = func.FunctionApp()
app.register_functions(intake.bp)
app.register_functions(dispatch.bp)
app.register_functions(action_functions.bp)
