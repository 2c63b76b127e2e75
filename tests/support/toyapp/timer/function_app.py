"""Valid for the worker, but a timer trigger is not something the local runner serves."""
import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def tick(timer: func.TimerRequest) -> None:
    pass
