package com.example.userservice.workflow;

import com.example.userservice.activities.Activities;
import io.temporal.activity.ActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.failure.ApplicationFailure;
import java.time.Duration;

/**
 * UserWorkflow on hosted activities: ValidateUser, CreateUser, UpdateUser, DeleteUser and
 * SendNotification run on activity-host, called through the generated stubs. Another user
 * under the same id fails the run with a "Conflict" failure.
 */
public class UserWorkflowImpl implements UserWorkflow {
    private final Activities activities = new Activities(ActivityOptions.newBuilder()
            .setTaskQueue(Activities.TASK_QUEUE)
            .setStartToCloseTimeout(Duration.ofSeconds(30))
            // The host heartbeats for every running guest: a host that dies is noticed in 10 s.
            .setHeartbeatTimeout(Duration.ofSeconds(8))
            .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(3).build())
            .build());

    @Override
    public UserOutput run(UserInput in) {
        Activities.User user = new Activities.User(in.userId(), in.email(), in.name());
        Activities.CreateUserOutput stored = null;
        Boolean deleted = null;
        switch (in.action()) {
            case "create":
                Activities.ValidateUserOutput valid = activities.validateUser(user);
                if (!valid.valid()) {
                    throw ApplicationFailure.newNonRetryableFailure(
                            "invalid user: " + String.join("; ", valid.reasons()), "Invalid");
                }
                try {
                    stored = activities.createUser(user);
                } catch (Activities.ConflictFailure e) {
                    throw conflict(in.userId(), e);
                }
                break;
            case "update":
                stored = activities.updateUser(user);
                break;
            case "delete":
                deleted = activities.deleteUser(in.userId());
                break;
            default:
                throw ApplicationFailure.newNonRetryableFailure("unknown action " + in.action(), "InvalidAction");
        }
        Activities.SendNotificationOutput note = activities.sendNotification(new Activities.Notification(
                in.userId(), in.email(), action(in.action()), "user " + in.userId() + ": " + in.action()));
        return new UserOutput(stored, deleted, note);
    }

    private static Activities.NotificationAction action(String action) {
        return Activities.NotificationAction.valueOf(action.toUpperCase(java.util.Locale.ROOT));
    }

    /** CreateUser's typed Conflict (its details: the user stored under the id) as the run's failure. */
    private static ApplicationFailure conflict(String id, Activities.ConflictFailure e) {
        String holder = "another user";
        if (e.details(Activities.CreateUserError.class) instanceof Activities.CreateUserError.Conflict taken) {
            holder = taken.value().email();
        }
        return ApplicationFailure.newNonRetryableFailure("user " + id + " is taken by " + holder, "Conflict");
    }
}
