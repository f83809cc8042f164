// The Temporal worker of the seed's layout: it registers UserWorkflow on its own task queue.
// The workflow's activities are not registered here: they run on activity-host.
//
//	go run ./cmd/temporal-worker [-address localhost:7233] [-namespace default] [-task-queue go-user-task-queue]
package main

import (
	"flag"
	"log"
	"os"

	"example.com/user-service/internal/application/workflow"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

func main() {
	address := flag.String("address", envOr("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend")
	namespace := flag.String("namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	queue := flag.String("task-queue", workflow.TaskQueue, "this worker's task queue")
	flag.Parse()

	c, err := client.Dial(client.Options{HostPort: *address, Namespace: *namespace})
	if err != nil {
		log.Fatalf("connect to Temporal at %s: %v", *address, err)
	}
	defer c.Close()
	w := worker.New(c, *queue, worker.Options{})
	w.RegisterWorkflow(workflow.UserWorkflow)
	if err := w.Run(worker.InterruptCh()); err != nil {
		log.Fatalf("worker: %v", err)
	}
}

// envOr is the environment variable name's value, else fallback (the temporal CLI's
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE).
func envOr(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok && value != "" {
		return value
	}
	return fallback
}
