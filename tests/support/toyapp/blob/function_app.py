"""Valid for the worker, but a blob trigger is not something the local runner serves."""
import azure.functions as func

app = func.FunctionApp()


@app.blob_trigger(arg_name="blob", path="incoming/{name}", connection="AzureWebJobsStorage")
def arrived(blob: func.InputStream) -> None:
    pass
