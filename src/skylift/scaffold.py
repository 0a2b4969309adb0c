"""`skylift init`: the files of a new app, as text.

Two layouts: a decorator app (`app.py` with one HTTP and one queue function) or a SAM
project (`template.yaml`, a folder per function, as `sam init` lays it out). Both come
with tests on `skylift.testing.Client`, a Makefile (setup, install, lint, test, run, all),
CI for GitHub Actions and CircleCI that run `make all`, and a README with the two
commands. The Dockerfile is `skylift export docker`'s, written by the command.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from urllib.parse import unquote

NAME = re.compile(r"[a-z][a-z0-9-]{0,48}[a-z0-9]")
PYTHON = "3.11"

APP = '''\
"""{name}: one HTTP function and one queue function."""

import json

from skylift import App

app = App()


@app.http("/hello/{{who}}", methods=["GET"])
def hello(event, context):
    who = event["pathParameters"]["who"]
    return {{"statusCode": 200, "body": json.dumps({{"message": f"hello, {{who}}"}})}}


@app.queue("tasks", report_batch_item_failures=True)
def work(event, context):
    failed = [r["messageId"] for r in event["Records"] if not r["body"].strip()]
    return {{"batchItemFailures": [{{"itemIdentifier": i}} for i in failed]}}
'''

TESTS_APP = """\
from pathlib import Path

import pytest
from skylift.testing import Client

APP = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    with Client(APP) as running:
        yield running


def test_hello_greets_by_name(client):
    response = client.http.get("/hello/ada")
    assert response.status_code == 200
    assert response.json() == {"message": "hello, ada"}


def test_work_reports_empty_tasks_as_failures(client):
    assert client.send("tasks", "resize photo.jpg").result == {"batchItemFailures": []}
    assert client.send("tasks", " ").result["batchItemFailures"]
"""

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: {name}

Globals:
  Function:
    Runtime: python{python}
    Timeout: 10
    MemorySize: 128

Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.lambda_handler
      Events:
        Hello:
          Type: Api
          Properties:
            Path: /hello/{{who}}
            Method: get

  TasksQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: tasks

  WorkFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: work/
      Handler: app.lambda_handler
      Events:
        Tasks:
          Type: SQS
          Properties:
            Queue: !GetAtt TasksQueue.Arn
            FunctionResponseTypes:
              - ReportBatchItemFailures
"""

SAM_HELLO = """\
import json


def lambda_handler(event, context):
    who = event["pathParameters"]["who"]
    return {"statusCode": 200, "body": json.dumps({"message": f"hello, {who}"})}
"""

SAM_WORK = """\
def lambda_handler(event, context):
    failed = [r["messageId"] for r in event["Records"] if not r["body"].strip()]
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
"""

TESTS_SAM = TESTS_APP.replace(
    "with Client(APP) as running:", 'with Client(template=APP / "template.yaml") as running:'
)

MAKEFILE = """\
# {name}: `make run` serves it, `make test` runs its tests, `make all` is what CI runs.
PYTHON  ?= python3
VENV    ?= .venv
# How skylift is installed (recorded by `skylift init`); a pip requirement or -e PATH.
SKYLIFT ?= {skylift}
PORT    ?= 8080

.PHONY: all setup install lint test run

all: lint test

setup: $(VENV)/.installed

install: setup

$(VENV)/.installed: requirements.txt
\t$(PYTHON) -m venv $(VENV)
\t$(VENV)/bin/pip install --quiet --disable-pip-version-check $(SKYLIFT) \\
\t\t-r requirements.txt pytest ruff
\ttouch $@

lint: setup
\t$(VENV)/bin/ruff check .
\t$(VENV)/bin/ruff format --check .

test: setup
\t$(VENV)/bin/pytest -q

run: setup
\t$(VENV)/bin/skylift up {target} --port $(PORT)
"""

REQUIREMENTS = """\
# The app's own dependencies, one per line, in pip's format; skylift itself is installed
# by the Makefile (SKYLIFT), and `skylift export docker` installs these into the image.
"""

GITHUB = """\
name: ci
on:
  push:
  pull_request:
jobs:
  all:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
      - run: make all
"""

CIRCLECI = """\
version: 2.1
jobs:
  all:
    docker:
      - image: cimg/python:{python}
    steps:
      - checkout
      - run: make all
workflows:
  ci:
    jobs:
      - all
"""

PYPROJECT = """\
# Settings of the tools `make lint` and `make test` run (the app is not a package).
[tool.ruff]
extend-exclude = ["skylift-dist"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

GITIGNORE = ".venv/\n.skylift/\n.skylift-build/\n__pycache__/\n.pytest_cache/\n.ruff_cache/\n"

README = """\
# {name}

Serverless functions on [skylift](https://pypi.org/project/skylift/): they run here as
AWS Lambda runs them, and deploy to AWS unchanged.

```sh
make run     # serves {target} on http://127.0.0.1:8080 (another port: make run PORT=9000)
make test    # its tests, with skylift.testing.Client
```

Then, in another terminal:

```sh
curl http://127.0.0.1:8080/hello/ada
.venv/bin/skylift send tasks "resize photo.jpg"
```

`make all` (lint and tests) is what CI runs: `.github/workflows/ci.yml` and
`.circleci/config.yml`. A container image: `docker build -t {name} .` with the Dockerfile
`skylift export docker` wrote; AWS: `skylift export sam --out template.yaml`.
"""


def skylift_requirement() -> str:
    """How this skylift was installed, as pip takes it: `-e PATH` for an editable
    install, `skylift @ URL` for one from a folder or URL, else `skylift==VERSION`."""
    distribution = metadata.distribution("skylift")
    direct = distribution.read_text("direct_url.json")
    if direct:
        found = json.loads(direct)
        url = str(found.get("url", ""))
        if found.get("dir_info", {}).get("editable") and url.startswith("file://"):
            return f"-e {unquote(url.removeprefix('file://'))}"
        if url:
            return f"skylift@{url}"
    return f"skylift=={distribution.version}"


def files(name: str, sam: bool) -> dict[str, str]:
    """The new app's files by relative path (the Dockerfile is exported separately)."""
    target = "--template template.yaml" if sam else "."
    values = {"name": name, "python": PYTHON, "skylift": skylift_requirement(), "target": target}
    out = {
        "tests/test_app.py": TESTS_SAM if sam else TESTS_APP,
        "requirements.txt": REQUIREMENTS,
        "Makefile": MAKEFILE.format(**values),
        ".github/workflows/ci.yml": GITHUB.format(**values),
        ".circleci/config.yml": CIRCLECI.format(**values),
        ".gitignore": GITIGNORE,
        "pyproject.toml": PYPROJECT,
        "README.md": README.format(**values),
    }
    if sam:
        out["template.yaml"] = TEMPLATE.format(**values)
        out["hello/app.py"] = SAM_HELLO
        out["work/app.py"] = SAM_WORK
    else:
        out["app.py"] = APP.format(**values)
    return out
