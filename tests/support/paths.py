"""Where things are, and the webhook secret the test settings use."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TOYS = Path(__file__).resolve().parent / "toyapp"
SECRET = "local-test-secret"
