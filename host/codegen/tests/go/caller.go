// A workflow's use of the generated Go stubs (activities/stubs.go, written by the test):
// typed arguments and results, and failures compared with the sentinels.
package stubcheck

import (
	"errors"

	"example.com/stubcheck/activities"
	"go.temporal.io/sdk/workflow"
)

// Check validates, creates and deletes a user through the host's activities.
func Check(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: activities.TaskQueue})
	user := activities.User{UserId: "u", Email: "e@x.io", Name: "N"}
	valid, err := activities.ValidateUser(ctx, user)
	if err != nil {
		return "", err
	}
	if !valid.Valid {
		return valid.Reasons[0], nil
	}
	created, err := activities.CreateUser(ctx, user)
	var failure *activities.HostError
	if errors.As(err, &failure) {
		var details activities.CreateUserError
		if errors.Is(err, activities.ErrConflict) && failure.Details(&details) == nil {
			return "taken by " + details.Conflict.Email, nil
		}
		return failure.Type, err
	}
	if err != nil {
		return "", err
	}
	deleted, err := activities.DeleteUser(ctx, user.UserId)
	if err != nil || !deleted {
		return "", err
	}
	return created.UserId, nil
}
