"""Several skylift nodes on one Redis (`skylift up --state redis://...`): each node's
handle on it (`node.py`), fenced leases (`lease.py`) that make each schedule fire once
per tick across nodes (`schedules.py`), and membership with heartbeats (`members.py`)."""
