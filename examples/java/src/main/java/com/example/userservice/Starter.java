package com.example.userservice;

import com.example.userservice.workflow.UserInput;
import com.example.userservice.workflow.UserOutput;
import com.example.userservice.workflow.UserWorkflow;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.failure.ApplicationFailure;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Starts UserWorkflow on the Java worker's task queue, waits for it and prints what it
 * answered as JSON: {"result": ...}, or {"error": {"type", "message"}} when it failed, with
 * "elapsed_ms" from the start request to the answer.
 *
 * <pre>java ... com.example.userservice.Starter --id ID --user-id ID --email EMAIL --name NAME --action create|update|delete</pre>
 */
public final class Starter {
    private Starter() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> flags = Flags.parse(args);
        WorkflowClient client = Flags.client(flags);
        UserWorkflow workflow = client.newWorkflowStub(UserWorkflow.class, WorkflowOptions.newBuilder()
                .setWorkflowId(flags.get("id"))
                .setTaskQueue(flags.getOrDefault("task-queue", UserWorkflow.TASK_QUEUE))
                .build());
        UserInput input = new UserInput(
                flags.get("user-id"), flags.get("email"), flags.get("name"), flags.getOrDefault("action", "create"));
        Map<String, Object> answer = new LinkedHashMap<>();
        long started = System.nanoTime();
        try {
            UserOutput output = workflow.run(input);
            answer.put("result", output);
        } catch (WorkflowFailedException e) {
            if (!(e.getCause() instanceof ApplicationFailure failure)) {
                throw e;
            }
            answer.put("error", Map.of("type", failure.getType(), "message", failure.getOriginalMessage()));
        }
        // From the start request to the result, as this client saw it.
        answer.put("elapsed_ms", (System.nanoTime() - started) / 1_000_000);
        System.out.println(new ObjectMapper().writeValueAsString(answer));
        System.exit(0);
    }
}
