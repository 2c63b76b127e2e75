"""A timer that fires every second and counts its runs in a file named by TICK_FILE."""
import os

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(arg_name="timer", schedule="* * * * * *")
def tick(timer: func.TimerRequest) -> None:
    with open(os.environ["TICK_FILE"], "a") as f:
        f.write("past_due\n" if timer.past_due else "tick\n")
