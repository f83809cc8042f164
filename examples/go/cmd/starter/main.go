// Starts UserWorkflow on the Go worker's task queue, waits for it and prints what it
// answered as JSON: {"result": ...}, or {"error": {"type", "message"}} when it failed, with
// "elapsed_ms" from the start request to the answer.
//
//	go run ./cmd/starter -id ID -user-id ID -email EMAIL -name NAME -action create|update|delete
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"example.com/user-service/internal/application/workflow"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

func main() {
	address := flag.String("address", envOr("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend")
	namespace := flag.String("namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	queue := flag.String("task-queue", workflow.TaskQueue, "the Go worker's task queue")
	id := flag.String("id", "", "workflow id")
	var in workflow.UserInput
	flag.StringVar(&in.UserID, "user-id", "", "user id")
	flag.StringVar(&in.Email, "email", "", "email")
	flag.StringVar(&in.Name, "name", "", "name")
	flag.StringVar(&in.Action, "action", "create", "create, update or delete")
	flag.Parse()

	c, err := client.Dial(client.Options{HostPort: *address, Namespace: *namespace})
	if err != nil {
		log.Fatalf("connect to Temporal at %s: %v", *address, err)
	}
	defer c.Close()
	ctx := context.Background()
	started := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: *id, TaskQueue: *queue},
		workflow.UserWorkflow, in)
	if err != nil {
		log.Fatalf("start: %v", err)
	}
	var out workflow.UserOutput
	answer := map[string]any{}
	var failure *temporal.ApplicationError
	switch err := run.Get(ctx, &out); {
	case errors.As(err, &failure):
		answer["error"] = map[string]string{"type": failure.Type(), "message": failure.Message()}
	case err != nil:
		log.Fatalf("run %s: %v", *id, err)
	default:
		answer["result"] = out
	}
	// From the start request to the result, as this client saw it.
	answer["elapsed_ms"] = time.Since(started).Milliseconds()
	text, err := json.Marshal(answer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(text))
}

// envOr is the environment variable name's value, else fallback (the temporal CLI's
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE).
func envOr(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok && value != "" {
		return value
	}
	return fallback
}
