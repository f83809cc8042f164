// Package workflow holds UserWorkflow, the seed's workflow, written in Go: its steps run as
// activities hosted on activity-host, called through the generated stubs
// (internal/activities, `activity-host codegen --lang go`).
package workflow

import (
	"errors"
	"strings"
	"time"

	"example.com/user-service/internal/activities"
	"go.temporal.io/sdk/temporal"
	wf "go.temporal.io/sdk/workflow"
)

// TaskQueue is this worker's own task queue: the workflow runs here, its activities on the
// host's (activities.TaskQueue).
const TaskQueue = "go-user-task-queue"

// UserInput is the seed's request: {"user_id", "email", "name", "action"}.
type UserInput struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Action string `json:"action"`
}

// UserOutput is what a run did: the stored user (create, update), whether a user was
// deleted, and the notification.
type UserOutput struct {
	User         *activities.CreateUserOutput      `json:"user,omitempty"`
	Deleted      bool                              `json:"deleted,omitempty"`
	Notification activities.SendNotificationOutput `json:"notification"`
}

// UserWorkflow creates (after validating), updates or deletes a user, then sends a
// notification. Another user under the same id fails the run with a "Conflict" error.
func UserWorkflow(ctx wf.Context, in UserInput) (UserOutput, error) {
	ctx = wf.WithActivityOptions(ctx, wf.ActivityOptions{
		TaskQueue:           activities.TaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    8 * time.Second, // the host heartbeats for every guest it runs
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	user := activities.User{UserId: in.UserID, Email: in.Email, Name: in.Name}
	var out UserOutput
	switch in.Action {
	case "create":
		valid, err := activities.ValidateUser(ctx, user)
		if err != nil {
			return out, err
		}
		if !valid.Valid {
			return out, temporal.NewNonRetryableApplicationError(
				"invalid user: "+strings.Join(valid.Reasons, "; "), "Invalid", nil)
		}
		created, err := activities.CreateUser(ctx, user)
		if errors.Is(err, activities.ErrConflict) {
			return out, conflict(in.UserID, err)
		}
		if err != nil {
			return out, err
		}
		out.User = &created
	case "update":
		updated, err := activities.UpdateUser(ctx, user)
		if err != nil {
			return out, err
		}
		out.User = &updated
	case "delete":
		deleted, err := activities.DeleteUser(ctx, in.UserID)
		if err != nil {
			return out, err
		}
		out.Deleted = deleted
	default:
		return out, temporal.NewNonRetryableApplicationError(
			"unknown action "+in.Action, "InvalidAction", nil)
	}
	note, err := activities.SendNotification(ctx, activities.Notification{
		UserId:  in.UserID,
		Email:   in.Email,
		Action:  activities.NotificationAction(in.Action),
		Message: "user " + in.UserID + ": " + in.Action,
	})
	if err != nil {
		return out, err
	}
	out.Notification = note
	return out, nil
}

// conflict turns CreateUser's typed Conflict (its details: the user stored under the id)
// into the run's failure.
func conflict(id string, err error) error {
	var failure *activities.HostError
	var details activities.CreateUserError
	holder := "another user"
	if errors.As(err, &failure) && failure.Details(&details) == nil && details.Conflict != nil {
		holder = details.Conflict.Email
	}
	return temporal.NewNonRetryableApplicationError(
		"user "+id+" is taken by "+holder, "Conflict", nil)
}
