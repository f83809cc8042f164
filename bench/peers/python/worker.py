"""The reference UserWorkflow and its five activities as a plain Temporal Python SDK worker.

A peer of activity-host in the end-to-end benchmark: the same workflow steps, timeouts and
retries, the same validation rules, the same SQLite key-value table (`kv`, store `users`,
key `user:<id>`, the user as JSON) and the same webhook call. Activities are ordinary
Python functions; the worker executes them eagerly, as the SDK does by default.

    python worker.py --address localhost:7233 --task-queue q --db users.sqlite \
        [--webhook-url http://127.0.0.1:9000/hook]
"""

import argparse
import asyncio
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

MAX_USER_ID_LEN = 128
MAX_EMAIL_LEN = 254
MAX_EMAIL_LOCAL_LEN = 64
MAX_NAME_CHARS = 200
USER_ID_EXTRA = set("-_.@")


def validate(user_id: str, email: str, name: str) -> list:
    """The rules of activities-wasm/user-store, one reason per failed check."""
    reasons = []
    if not user_id:
        reasons.append("user_id: must not be empty")
    elif len(user_id.encode()) > MAX_USER_ID_LEN:
        reasons.append(f"user_id: must be at most {MAX_USER_ID_LEN} bytes")
    elif not all((c.isascii() and c.isalnum()) or c in USER_ID_EXTRA for c in user_id):
        reasons.append("user_id: may contain only letters, digits, '-', '_', '.' and '@'")
    reasons.extend(_validate_email(email))
    if not name.strip():
        reasons.append("name: must not be empty")
    elif len(name) > MAX_NAME_CHARS:
        reasons.append(f"name: must be at most {MAX_NAME_CHARS} characters")
    elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        reasons.append("name: must not contain control characters")
    return reasons


def _validate_email(email: str) -> list:
    if not email:
        return ["email: must not be empty"]
    if len(email.encode()) > MAX_EMAIL_LEN:
        return [f"email: must be at most {MAX_EMAIL_LEN} bytes"]
    if any(c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160 for c in email):
        return ["email: must not contain spaces or control characters"]
    if "@" not in email:
        return ["email: must contain '@'"]
    local, domain = email.split("@", 1)
    if "@" in domain:
        return ["email: must contain exactly one '@'"]
    reasons = []
    if not local:
        reasons.append("email: the part before '@' must not be empty")
    elif len(local.encode()) > MAX_EMAIL_LOCAL_LEN:
        reasons.append(f"email: the part before '@' must be at most {MAX_EMAIL_LOCAL_LEN} bytes")
    elif local.startswith(".") or local.endswith(".") or ".." in local:
        reasons.append("email: the part before '@' has a misplaced '.'")
    labels = domain.split(".")
    if len(labels) < 2:
        reasons.append("email: the domain must contain a '.'")
    elif any(
        not label
        or label.startswith("-")
        or label.endswith("-")
        or not all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ):
        reasons.append("email: the domain is not a valid host name")
    return reasons


class Store:
    """The host's key-value table in SQLite (WAL, synchronous=NORMAL): one connection
    behind a lock, as the host holds it."""

    def __init__(self, path: str):
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (store TEXT NOT NULL, key TEXT NOT NULL,"
            " value BLOB NOT NULL, PRIMARY KEY (store, key)) WITHOUT ROWID"
        )

    def get(self, user_id: str):
        with self.lock:
            row = self.conn.execute(
                "SELECT value FROM kv WHERE store = 'users' AND key = ?", (f"user:{user_id}",)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, user: dict):
        value = json.dumps(user, separators=(",", ":")).encode()
        with self.lock:
            self.conn.execute(
                "INSERT INTO kv (store, key, value) VALUES ('users', ?, ?)"
                " ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                (f"user:{user['user_id']}", value),
            )

    def delete(self, user_id: str) -> bool:
        with self.lock:
            cur = self.conn.execute(
                "DELETE FROM kv WHERE store = 'users' AND key = ?", (f"user:{user_id}",)
            )
            return cur.rowcount > 0


def now_ms() -> int:
    return int(time.time() * 1000)


def check(user: dict):
    reasons = validate(user["user_id"], user["email"], user["name"])
    if reasons:
        raise ApplicationError("; ".join(reasons), reasons, type="Invalid", non_retryable=True)


class Activities:
    def __init__(self, store: Store, webhook_url):
        self.store = store
        self.webhook_url = webhook_url

    @activity.defn(name="ValidateUser")
    def validate_user(self, user: dict) -> dict:
        reasons = validate(user["user_id"], user["email"], user["name"])
        return {"valid": not reasons, "reasons": reasons}

    @activity.defn(name="CreateUser")
    def create_user(self, user: dict) -> dict:
        check(user)
        existing = self.store.get(user["user_id"])
        if existing is not None:
            if existing["email"] == user["email"] and existing["name"] == user["name"]:
                return existing
            raise ApplicationError(
                f"user {user['user_id']!r} exists with other data", existing,
                type="Conflict", non_retryable=True,
            )
        now = now_ms()
        stored = {
            "user_id": user["user_id"], "email": user["email"], "name": user["name"],
            "version": 1, "created_at_ms": now, "updated_at_ms": now,
        }
        self.store.put(stored)
        return stored

    @activity.defn(name="UpdateUser")
    def update_user(self, user: dict) -> dict:
        check(user)
        stored = self.store.get(user["user_id"])
        if stored is None:
            raise ApplicationError(
                f"user {user['user_id']!r} does not exist", type="NotFound", non_retryable=True
            )
        if stored["email"] != user["email"] or stored["name"] != user["name"]:
            stored.update(email=user["email"], name=user["name"],
                          version=stored["version"] + 1, updated_at_ms=now_ms())
            self.store.put(stored)
        return stored

    @activity.defn(name="DeleteUser")
    def delete_user(self, user_id: str) -> bool:
        if not user_id:
            raise ApplicationError("user_id: must not be empty", type="Invalid", non_retryable=True)
        return self.store.delete(user_id)

    @activity.defn(name="SendNotification")
    def send_notification(self, notification: dict) -> dict:
        if not self.webhook_url:
            activity.logger.info("notification %s", notification)
            return {"target": "host-log", "status": None}
        info = activity.info()
        body = dict(notification, workflow_id=info.workflow_id, activity_id=info.activity_id)
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json",
                     "idempotency-key": f"{info.workflow_id}/{info.activity_id}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            raise ApplicationError(f"could not call webhook: {e}", type="WebhookUnavailable")
        if 200 <= status < 300:
            return {"target": self.webhook_url, "status": status}
        raise ApplicationError(
            f"webhook answered {status}", type="WebhookRejected",
            non_retryable=status not in (408, 429) and status < 500,
        )


RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=10,
)
PAST_TENSE = {"create": "created", "update": "updated", "delete": "deleted"}


@workflow.defn(name="UserWorkflow")
class UserWorkflow:
    def __init__(self):
        self.progress = {"steps_done": [], "running": None, "cancel_requested": False,
                         "result": {"user_id": "", "action": None, "user": None,
                                    "deleted": None, "notification": None}}

    async def step(self, name: str, arg):
        if self.progress["cancel_requested"]:
            raise ApplicationError("cancelled", type="Cancelled", non_retryable=True)
        self.progress["running"] = name
        out = await workflow.execute_activity(
            name, arg, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY
        )
        self.progress["steps_done"].append(name)
        self.progress["running"] = None
        return out

    @workflow.run
    async def run(self, request: dict) -> dict:
        action = request["action"]
        user_id = request["user_id"]
        user = {"user_id": user_id, "email": request.get("email", ""),
                "name": request.get("name", "")}
        result = self.progress["result"]
        result.update(user_id=user_id, action=action)
        if action != "delete":
            validation = await self.step("ValidateUser", user)
            if not validation["valid"]:
                raise ApplicationError(
                    f"user {user_id!r} is invalid: {'; '.join(validation['reasons'])}",
                    validation["reasons"], type="InvalidUser", non_retryable=True,
                )
        if action == "create":
            result["user"] = await self.step("CreateUser", user)
        elif action == "update":
            result["user"] = await self.step("UpdateUser", user)
        else:
            result["deleted"] = await self.step("DeleteUser", user_id)
        result["notification"] = await self.step("SendNotification", {
            "user_id": user_id, "email": user["email"], "action": action,
            "message": f"user {user_id} was {PAST_TENSE[action]}",
        })
        return result

    @workflow.query
    def progress(self) -> dict:
        return self.progress

    @workflow.signal
    def cancel(self):
        self.progress["cancel_requested"] = True


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="localhost:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="user-task-queue")
    parser.add_argument("--db", required=True)
    parser.add_argument("--webhook-url")
    parser.add_argument("--max-concurrent-activities", type=int, default=100)
    # activity-host's defaults (worker.workflow_pollers, worker.activity_pollers).
    parser.add_argument("--workflow-pollers", type=int, default=10)
    parser.add_argument("--activity-pollers", type=int, default=10)
    args = parser.parse_args()
    client = await Client.connect(args.address, namespace=args.namespace)
    activities = Activities(Store(args.db), args.webhook_url)
    with ThreadPoolExecutor(max_workers=args.max_concurrent_activities) as executor:
        worker = Worker(
            client, task_queue=args.task_queue, workflows=[UserWorkflow],
            activities=[activities.validate_user, activities.create_user,
                        activities.update_user, activities.delete_user,
                        activities.send_notification],
            activity_executor=executor,
            max_concurrent_activities=args.max_concurrent_activities,
            max_concurrent_workflow_tasks=100, max_cached_workflows=1000,
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(args.workflow_pollers),
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(args.activity_pollers),
        )
        print("worker started", flush=True)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
