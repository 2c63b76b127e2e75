"""A FunctionApp with no functions registered (e.g. the decorators were forgotten)."""
import azure.functions as func

app = func.FunctionApp()


def webhook(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("never registered")
