"""Imports a module that does not exist: the worker then finds no functions at all."""
import azure.functions as func
import preservica_module_that_does_not_exist  # noqa: F401

app = func.FunctionApp()


@app.route(route="x")
def x(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("x")
