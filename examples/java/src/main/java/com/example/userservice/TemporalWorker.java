package com.example.userservice;

import com.example.userservice.activities.Activities;
import com.example.userservice.workflow.UserWorkflow;
import com.example.userservice.workflow.UserWorkflowImpl;
import io.temporal.client.WorkflowClient;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import io.temporal.worker.WorkflowImplementationOptions;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * The Temporal worker of the seed's layout: it registers UserWorkflow on its own task queue.
 * The workflow's activities are not registered here: they run on activity-host.
 *
 * <pre>java ... com.example.userservice.TemporalWorker [--address localhost:7233] [--namespace default] [--task-queue java-user-task-queue]</pre>
 */
public final class TemporalWorker {
    private TemporalWorker() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> flags = Flags.parse(args);
        WorkflowClient client = Flags.client(flags);
        WorkerFactory factory = WorkerFactory.newInstance(client);
        Worker worker = factory.newWorker(flags.getOrDefault("task-queue", UserWorkflow.TASK_QUEUE));
        // A hosted activity's failure that the workflow does not handle fails the run.
        worker.registerWorkflowImplementationTypes(
                WorkflowImplementationOptions.newBuilder()
                        .setFailWorkflowExceptionTypes(Activities.HostFailure.class)
                        .build(),
                UserWorkflowImpl.class);
        factory.start();
        Runtime.getRuntime().addShutdownHook(new Thread(factory::shutdown));
        System.out.println("worker started on " + flags.getOrDefault("task-queue", UserWorkflow.TASK_QUEUE));
        new CountDownLatch(1).await();
    }
}
