"""What `skylift --help` lists for each command, without importing the command.

Each entry is the first paragraph of the command's help (its docstring), which click
shortens to fit the terminal as it would the real one. Listing the commands from here
keeps `skylift --help` from importing every command module (~150 ms of imports).
`tests/test_cli_speed.py` checks every entry against its command, and that every
command of `LAZY` has one.
"""

from __future__ import annotations

SUMMARIES = {
    "alerts": "Open alerts and those resolved in the last day (policy: [alerts] in skylift.toml).",
    "backup": "Back up APP's queues, objects and definition to the archive FILE (a tar file).",
    "build": "Install each function's and layer's requirements.txt, as `sam build` does.",
    "describe": "Show FUNCTION's configuration, then its recent events with reasons, newest last.",
    "events": "Sample events for `skylift invoke -e` and for tests.",
    "export": "Write files that run APP elsewhere: a container image, Kubernetes, AWS SAM, "
    "and Prometheus alerting.",
    "get": "Download BUCKET/KEY from the running server to FILE (default: stdout).",
    "init": "Create a new app in the folder NAME: one HTTP and one queue function, their "
    "tests, requirements.txt, a Makefile, GitHub Actions and CircleCI files, a Dockerfile.",
    "invoke": "Invoke FUNCTION once: result JSON on stdout, its log on stderr, exit 1 on error.",
    "load": "Load TARGET step by step and find its knee: the highest step before p95 passes "
    "twice its unloaded value or more than 1% of requests fail.",
    "logs": "Print the stored logs of FUNCTION (default: every function) of APP, or of the "
    "server at --url.",
    "put": "Upload FILE (- for stdin) to BUCKET/KEY on the running server (fires uploads).",
    "queues": "List the app's queues: visible, in flight, delayed, oldest age, dead-letter depth.",
    "redrive": "Move the messages of dead-letter QUEUE back to the queues they came from.",
    "replay": "Run a past invocation's event again on the running server's current code, and "
    "show the old and new results side by side. Exit 1 when the new run failed.",
    "reset-db": "Set DATABASE aside (renamed, not deleted), so the next `skylift up` starts "
    "it empty.",
    "restore": "Restore the backup FILE into the app folder --to (checked in full first).",
    "scale": "Change FUNCTION's minimum instances and reserved concurrency on a running server.",
    "schedules": "List APP's schedules and their next fire times (UTC).",
    "send": "Send BODY to QUEUE (- reads BODY from stdin); prints the message id.",
    "status": "Show a running server's functions: instances, limits, throttles, cold "
    "starts, error rate over 5 minutes, triggers and last error.",
    "up": "Serve APP's functions over HTTP (APP: directory, file, or module:attribute).",
}
