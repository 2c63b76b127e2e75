"""The runner's queue triggers, polled as the host polls them with host.json's rules: base64
messages, batches, randomized back-off up to maxPollingInterval, visibilityTimeout after a failure,
and `<queue>-poison` once maxDequeueCount attempts have failed."""
from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage  # the one with dequeue_count etc., which the worker builds
from azure.storage.queue import LinearRetry, QueueClient

from handlers.clients import storage
from hookops import azurite
from hookops.host.base import Host
from hookops.host.functions import Function, RunnerError

log = logging.getLogger("hookops.runner")  # one logger for the whole runner
READ_TIMEOUT = 60   # azure-storage-queue's default (azure/storage/queue/_shared/constants.py READ_TIMEOUT)


def connection(binding: dict) -> str:
    """The storage connection string a queue binding names, as the host resolves it."""
    name = binding.get("connection") or "AzureWebJobsStorage"
    value = os.environ.get(f"AzureWebJobs{name}") or os.environ.get(name)  # the host tries both
    if not value:
        raise RunnerError(f"storage connection setting {name!r} is not set")
    if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        value = azurite.connection_string(*azurite.DEFAULT_PORTS)
    return value


def queue_name(binding: dict) -> str:
    def setting(m):  # %Name% resolves from app settings, as in the host
        if m[1] not in os.environ:
            raise RunnerError(f"queueName {binding['queueName']!r}: app setting {m[1]!r} is not set")
        return os.environ[m[1]]
    return re.sub(r"%(\w+)%", setting, binding["queueName"]).lower()


def client(binding: dict, queue: str | None = None, retries: int = 3) -> QueueClient:
    # The app's transport: the proxy and CA bundle read once, not on every request, and never .netrc (whose
    # entry would replace the storage Authorization header); a pool for the batch's threads sharing a client.
    transport = storage.transport(READ_TIMEOUT)
    return storage.read_environment(QueueClient.from_connection_string(
        connection(binding), queue or queue_name(binding), transport=transport,
        retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=retries)), transport)


def ensure(queue: QueueClient) -> QueueClient:
    """The queue, created if it is missing (the host creates trigger and poison queues)."""
    try:
        queue.create_queue()
    except ResourceExistsError:
        pass
    return queue


class QueuePoller:
    """Polls one queue-triggered function's queue until the runner stops; `run()` is its thread."""

    def __init__(self, runner: Host, fn: Function):
        self.runner, self.fn = runner, fn
        self.wake = threading.Event()  # set: poll now
        self.empty_polls = 0           # polls that found the queue empty and nothing in flight
        self.inflight = 0

    def _poison(self, queue: QueueClient, msg, why: str) -> None:
        poison = ensure(client(self.fn.trigger, f"{queue.queue_name}-poison"))
        # The original, still-encoded content, as a new message with the service's default
        # time-to-live (7 days from now), whatever the original's was: that is what the host does.
        # QueueProcessor.CopyMessageToPoisonQueueAsync calls AddMessageAndCreateIfNotExistsAsync(
        # message.Body), which calls QueueClient.SendMessageAsync(body) without a timeToLive
        # (Azure/azure-sdk-for-net, sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/
        # Shared/Queues/QueueProcessor.cs and Shared/StorageQueueExtensions.cs); it is not configurable
        # (Azure/azure-webjobs-sdk-extensions#891). So a poison message must be replayed within a week.
        poison.send_message(msg.content, time_to_live=None)
        queue.delete_message(msg.id, msg.pop_receipt)
        # The host's own wording (WebJobs QueueProcessor), which the poison alert in bicep/ searches for.
        log.warning("%s: message %s (%s): Moving message to queue '%s'.", self.fn.name, msg.id, why, poison.queue_name)
        self.runner.count(self.fn.name, "poisoned")

    def _process(self, queue: QueueClient, msg) -> None:
        fn, q, runner = self.fn, self.runner.config.queues, self.runner
        try:
            body = base64.b64decode(msg.content, validate=True) if q.message_encoding == "base64" \
                else msg.content.encode()
        except (binascii.Error, ValueError):  # the host cannot decode it either: straight to poison
            return self._poison(queue, msg, "not valid base64")
        if fn.trigger_type in (str, bytes):
            arg = body.decode() if fn.trigger_type is str else body
        else:
            arg = QueueMessage(id=msg.id, body=body, dequeue_count=msg.dequeue_count,
                               insertion_time=msg.inserted_on, expiration_time=msg.expires_on,
                               time_next_visible=msg.next_visible_on, pop_receipt=msg.pop_receipt)
        runner.count(fn.name, "invoked")
        try:
            runner.invoke(fn, arg)
        except Exception:
            log.error("%s failed on message %s (dequeue count %s)\n%s", fn.name, msg.id,
                      msg.dequeue_count, traceback.format_exc())
            runner.count(fn.name, "failed")
            if msg.dequeue_count >= q.max_dequeue_count:
                self._poison(queue, msg, f"dequeued {msg.dequeue_count} times")
            else:  # storage counts whole seconds
                queue.update_message(msg.id, msg.pop_receipt, visibility_timeout=round(q.visibility_timeout))
            return
        queue.delete_message(msg.id, msg.pop_receipt)
        runner.count(fn.name, "succeeded")

    def run(self) -> None:
        fn, runner = self.fn, self.runner
        q, cond, stopping = runner.config.queues, runner.cond, runner.stopping
        poller = client(fn.trigger, retries=0)  # this loop is the retry
        worker = client(fn.trigger)
        created, outage, backoff = False, False, 0
        pool = ThreadPoolExecutor(q.batch_size + q.new_batch_threshold, thread_name_prefix=f"q-{fn.name}")

        def settle(msg):
            try:
                self._process(worker, msg)
            except Exception:  # storage trouble while settling: the message reappears after its lease
                log.error("%s: could not settle message %s\n%s", fn.name, msg.id, traceback.format_exc())
            finally:
                with cond:
                    self.inflight -= 1
                    cond.notify_all()

        while not stopping.is_set():
            with cond:  # fetch more only once in-flight work falls to newBatchThreshold
                cond.wait_for(lambda: self.inflight <= q.new_batch_threshold or stopping.is_set())
            if stopping.is_set():
                break
            try:
                if not created:  # the host creates the trigger queue
                    created = bool(ensure(poller))
                msgs = list(poller.receive_messages(messages_per_page=q.batch_size, max_messages=q.batch_size,
                                                    visibility_timeout=runner.lease_seconds))
                if outage:
                    log.info("%s: queue %s reachable again", fn.name, poller.queue_name)
                    outage = False
            except AzureError as exc:
                if not outage:  # once per outage, not once per poll
                    log.error("%s: queue %s unreachable, still polling: %s", fn.name, poller.queue_name,
                              str(exc).splitlines()[0])
                    runner.count(fn.name, "outages")
                outage, created, msgs = True, False, []
            for msg in msgs:
                with cond:
                    self.inflight += 1
                pool.submit(settle, msg)
            if msgs:  # found work: poll again at once
                backoff = 0
                continue
            with cond:
                if self.inflight == 0 and not outage:
                    self.empty_polls += 1
                    cond.notify_all()
            backoff += 1  # randomized exponential back-off from 100 ms up to maxPollingInterval
            self.wake.wait(min(q.max_polling_interval, 0.1 * 2 ** min(backoff, 20) * random.uniform(0.8, 1.2)))
            if self.wake.is_set():
                self.wake.clear()
                backoff = 0
        pool.shutdown(wait=True)  # in-flight invocations finish
