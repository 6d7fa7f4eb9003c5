"""The local stack behind `frontdesk dev`: Temporal dev server, demo model, LiteLLM proxy,
worker and API, each a supervised child process. The process helpers are generic so the
integration-test fixtures start their servers the same way."""

from orchestrator.demo.devstack.litellm import (
    LiteLLMMissing,
    litellm_command,
    litellm_env,
    write_litellm_config,
)
from orchestrator.demo.devstack.processes import (
    ManagedProcess,
    ProcessError,
    TemporalMissing,
    free_port,
    port_is_free,
    temporal_binary,
    temporal_dev_server_command,
    wait_http_ok,
    wait_tcp,
)
from orchestrator.demo.devstack.supervisor import run_dev_stack

__all__ = [
    "LiteLLMMissing",
    "ManagedProcess",
    "ProcessError",
    "TemporalMissing",
    "free_port",
    "litellm_command",
    "litellm_env",
    "port_is_free",
    "run_dev_stack",
    "temporal_binary",
    "temporal_dev_server_command",
    "wait_http_ok",
    "wait_tcp",
    "write_litellm_config",
]
