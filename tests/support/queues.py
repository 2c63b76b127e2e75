"""Messages in and out of the pipeline's queues, as the dispatcher and the actions see them."""
import base64

from azure.storage.queue import QueueClient

from handlers.core import envelope, messages, settings
from hookops.doubles.deliveries import encode


def intake_msg(doc: dict) -> bytes:
    body = encode(doc)
    return messages.intake_message(envelope.delivery_id(body), "2026-11-29T10:00:01Z", body.decode()).encode()


def drain(conn: str, action: str) -> list[bytes]:
    q = QueueClient.from_connection_string(conn, settings.action_queue(action))
    out = []
    try:
        while batch := list(q.receive_messages(max_messages=32)):
            for m in batch:
                out.append(base64.b64decode(m.content))
                q.delete_message(m)
    except Exception:
        pass
    return out
