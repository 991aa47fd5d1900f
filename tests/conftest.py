"""Test-wide isolation: every run gets its own data folder and stays offline."""

from __future__ import annotations

import os
import tempfile

# Set before any project module reads settings: nothing a test does touches ./.warrant.
os.environ.setdefault("WARRANT_DATA_DIR", tempfile.mkdtemp(prefix="warrant-test-"))
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
}.items():
    os.environ.setdefault(_key, _value)

_FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
pytest_plugins = [
    f"tests.fixtures.{name}"
    for name in ("devstack",)
    if os.path.exists(os.path.join(_FIXTURES, f"{name}.py"))
]
