package com.example.userservice;

import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import java.util.HashMap;
import java.util.Map;

/** {@code --name value} command-line flags, and the Temporal client they name. */
final class Flags {
    private Flags() {}

    static Map<String, String> parse(String[] args) {
        Map<String, String> flags = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 == args.length) {
                throw new IllegalArgumentException("expected --name value, got " + args[i]);
            }
            flags.put(args[i].substring(2), args[++i]);
        }
        return flags;
    }

    /** A client of the frontend at --address in --namespace (else TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, else localhost:7233, default). */
    static WorkflowClient client(Map<String, String> flags) {
        WorkflowServiceStubs service = WorkflowServiceStubs.newServiceStubs(WorkflowServiceStubsOptions.newBuilder()
                .setTarget(flags.getOrDefault("address", env("TEMPORAL_ADDRESS", "localhost:7233")))
                .build());
        return WorkflowClient.newInstance(service, WorkflowClientOptions.newBuilder()
                .setNamespace(flags.getOrDefault("namespace", env("TEMPORAL_NAMESPACE", "default")))
                .build());
    }

    /** The environment variable {@code name}'s value, else {@code fallback} (the temporal CLI's TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE). */
    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
