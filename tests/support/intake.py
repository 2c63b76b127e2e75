"""Requests to the intake function as the host builds them."""
import azure.functions as func

from handlers.core import signature
from tests.support.paths import SECRET

URL = "http://localhost:7071/api/preservica/webhook"


def request(body: bytes = b"", headers=None, params=None) -> func.HttpRequest:
    return func.HttpRequest("POST", URL, headers=headers or {}, params=params or {}, body=body)


def signed(body: bytes, secret: str = SECRET, header: str = "Preservica-Signature") -> func.HttpRequest:
    return request(body, {header: signature.sign(secret, body)})
