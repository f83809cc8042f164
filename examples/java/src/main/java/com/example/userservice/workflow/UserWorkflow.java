package com.example.userservice.workflow;

import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/** The seed's workflow: create (after validating), update or delete a user, then notify. */
@WorkflowInterface
public interface UserWorkflow {
    /** This worker's own task queue: the workflow runs here, its activities on the host's. */
    String TASK_QUEUE = "java-user-task-queue";

    @WorkflowMethod(name = "UserWorkflow")
    UserOutput run(UserInput input);
}
