"""The storage floor's arithmetic (bench/floor.py) and the table's floor columns (bench/table.py), on
hand-made figures: what a run counted becomes the floor's operations, and each row gets its two cells."""
from bench import floor, table


def test_a_runs_counts_become_the_floors_operations():
    detail = {   # as StorageCounter.detail() gives them: owner|service|operation
        "app|queue|put": {"requests": 4, "bytes": 4000, "items": 0},
        "runner|queue|receive": {"requests": 2, "bytes": 0, "items": 6},
        "runner|queue|receive (empty)": {"requests": 9, "bytes": 0, "items": 0},
        "runner|queue|delete": {"requests": 6, "bytes": 0, "items": 0},
        "app|blob|put bench-thumbnails": {"requests": 10, "bytes": 1000, "items": 0},
        "app|blob|put deliveries": {"requests": 2, "bytes": 5000, "items": 0},
        "app|table|transaction": {"requests": 3, "bytes": 30000, "items": 150},
        "app|table|transaction (412)": {"requests": 1, "bytes": 10000, "items": 50},
        "app|table|query": {"requests": 2, "bytes": 0, "items": 100},
        "app|queue|create queue": {"requests": 1, "bytes": 0, "items": 0},
        "bench|table|query": {"requests": 5, "bytes": 0, "items": 600},
    }
    ops, left_out = floor.ops_from_counts(detail)
    by = {o["op"]: o for o in ops}
    assert by["queue_put"] == {"op": "queue_put", "count": 4, "bytes": 1000}
    # two receives of three messages each (6 deletes over 2 receives), the puts' mean size
    assert by["queue_receive"] == {"op": "queue_receive", "count": 2, "messages": 3, "bytes": 1000}
    assert by["blob_put"] == {"op": "blob_put", "count": 12, "bytes": 6000 // 12}   # both containers
    assert by["table_tx"] == {"op": "table_tx", "count": 3, "bytes": 10000, "entities": 50}
    assert by["table_query"]["count"] == 2 and by["table_query"]["entities"] == 50
    # the benchmark's own queries are not the app's; empty polls, creates and refusals are listed apart
    assert left_out == {"runner|queue|receive (empty)": 9, "app|table|transaction (412)": 1,
                        "app|queue|create queue": 1}


def test_floor_requests_are_counted_as_the_app_counts_them():
    # a receive and the deletes of what it got: 1 + messages requests, as the counter counts them
    ops, _ = floor.ops_from_counts({"runner|queue|receive": {"requests": 5, "bytes": 0, "items": 40},
                                    "runner|queue|delete": {"requests": 40, "bytes": 0, "items": 0}})
    [o] = ops
    assert o["count"] * (1 + o["messages"]) == 45


def test_every_row_gets_the_two_floor_cells():
    rows = {3: {"median_run": {"floor": {"concurrency": 8, "requests": 120, "wall_s": 2.0}},
                "floor_events_per_s": 30.0, "of_floor": 0.4}}
    line = "| 3 | Pipeline | 12 events/s | – | – | target | detail |"
    cells = [c.strip() for c in table.floor_cells(line, rows).strip("|").split("|")]
    assert len(cells) == 9 and cells[6] == "40%" and "120 storage requests: 30 events/s" in cells[5]
    other = [c.strip() for c in table.floor_cells("| 5 | CPU | 1 µs | 2 µs | 3× | – | d |", rows).strip("|").split("|")]
    assert other[5:7] == ["–", "–"] and other[7:] == ["–", "d"]
    assert table.floor_cells("Notes:", rows) == "Notes:"
