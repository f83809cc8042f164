"""A Python SDK workflow that calls activities on an activity-host through the stubs
`activity-host codegen --lang python` wrote (`activity_stubs.py` beside this file):
ValidateUser -> CreateUser -> SendNotification, then CreateUser again with other data to
show the typed failure. Run: python typed_workflow.py ADDRESS TASK_QUEUE USER_ID; prints the
workflow's result as JSON."""

import asyncio
import json
import os
import sys
import time
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activity_stubs import (
        ActivityHostFailure,
        User,
        create_user,
        send_notification,
        validate_user,
    )


@workflow.defn
class TypedUserWorkflow:
    @workflow.run
    async def run(self, user_id: str) -> dict[str, Any]:
        user: User = {"user_id": user_id, "email": "typed@example.com", "name": "Typed"}
        validation = await validate_user(user)
        if not validation["valid"]:
            return {"invalid": validation["reasons"]}
        stored = await create_user(user, start_to_close_timeout=timedelta(seconds=10))
        delivery = await send_notification(
            {
                "user_id": stored["user_id"],
                "email": stored["email"],
                "action": "create",
                "message": f"welcome, version {stored['version']}",
            }
        )
        conflict = ""
        try:
            await create_user({"user_id": user_id, "email": "other@example.com", "name": "Other"})
        except ActivityHostFailure as failure:
            conflict = failure.type
        return {"stored": stored, "delivery": delivery, "conflict": conflict}


async def main() -> None:
    address, queue, user_id = sys.argv[1], sys.argv[2], sys.argv[3]
    client = await Client.connect(address)
    async with Worker(client, task_queue=queue, workflows=[TypedUserWorkflow]):
        started = time.monotonic()
        result = await client.execute_workflow(
            TypedUserWorkflow.run, user_id, id=f"typed-{user_id}", task_queue=queue
        )
        # From the start request to the result, as this client saw it.
        elapsed_ms = round((time.monotonic() - started) * 1000)
    print(json.dumps({**result, "elapsed_ms": elapsed_ms}))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's core threads can still call into Python while the interpreter finalizes
    # ("Fatal Python error: PyGILState_Release", after the result was printed, now and then):
    # leave without finalizing, once the output is out.
    sys.stdout.flush()
    os._exit(0)
