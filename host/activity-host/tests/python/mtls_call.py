"""A Python SDK workflow that calls a hosted activity by its type name, on a Temporal
frontend that requires mutual TLS.

    python mtls_call.py ADDRESS CA CERT KEY SERVER_NAME QUEUE HOST_QUEUE WORKFLOW_ID

Runs a worker for its own workflow on QUEUE, starts the workflow, and prints the activity's
result as JSON. The activity runs on activity-host, on HOST_QUEUE.
"""

import asyncio
import json
import os
import sys
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client, TLSConfig
from temporalio.worker import Worker


@workflow.defn
class ValidateByName:
    @workflow.run
    async def run(self, host_queue: str, user: dict[str, Any]) -> Any:
        return await workflow.execute_activity(
            "ValidateUser",
            user,
            task_queue=host_queue,
            start_to_close_timeout=timedelta(seconds=30),
        )


async def main() -> None:
    address, ca, cert, key, server_name, queue, host_queue, workflow_id = sys.argv[1:9]

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    tls = TLSConfig(
        server_root_ca_cert=read(ca),
        client_cert=read(cert),
        client_private_key=read(key),
        domain=server_name,
    )
    client = await Client.connect(address, tls=tls)
    async with Worker(client, task_queue=queue, workflows=[ValidateByName]):
        result = await client.execute_workflow(
            ValidateByName.run,
            args=[host_queue, {"user_id": "py-1", "email": "py@example.com", "name": "Py"}],
            id=workflow_id,
            task_queue=queue,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's core threads can still call into Python while the interpreter finalizes
    # ("Fatal Python error: PyGILState_Release", after the result was printed, now and then):
    # leave without finalizing, once the output is out.
    sys.stdout.flush()
    os._exit(0)
