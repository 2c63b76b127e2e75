"""The trigger's arg_name does not match the parameter's name."""
import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
def x(message: func.QueueMessage) -> None:
    pass
