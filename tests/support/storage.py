"""Storage helpers shared by fixtures and tests."""


def clear_storage(conn: str) -> None:
    """Empty every queue, table and container of the storage account: a new app."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    queues = QueueServiceClient.from_connection_string(conn)
    for q in queues.list_queues():
        queues.get_queue_client(q.name).clear_messages()
    tables = TableServiceClient.from_connection_string(conn)
    for t in tables.list_tables():
        tables.delete_table(t.name)
    blobs = BlobServiceClient.from_connection_string(conn)
    for c in blobs.list_containers():
        blobs.delete_container(c.name)
