"""func.Out[list[str]]: azure-functions accepts it, the worker's indexing does not."""
import azure.functions as func

app = func.FunctionApp()


@app.route(route="x", methods=["POST"])
@app.queue_output(arg_name="msgs", queue_name="q", connection="AzureWebJobsStorage")
def x(req: func.HttpRequest, msgs: func.Out[list[str]]) -> func.HttpResponse:
    msgs.set(["a"])
    return func.HttpResponse("x")
