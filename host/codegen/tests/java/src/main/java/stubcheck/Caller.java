package stubcheck;

import activities.Activities;
import io.temporal.activity.ActivityOptions;
import java.time.Duration;

/** A caller of the stubs as workflow code writes it (compiled, not run: the test swaps a field's type to see javac refuse it). */
public final class Caller {
    private Caller() {}

    /** Creates a user; another under the same id answers that user's email. */
    public static String create(String id) {
        Activities activities = new Activities(
                ActivityOptions.newBuilder().setStartToCloseTimeout(Duration.ofSeconds(5)).build());
        Activities.User user = new Activities.User(id, "e@x.io", "N");
        try {
            return activities.createUser(user).email();
        } catch (Activities.ConflictFailure e) {
            Activities.CreateUserError details = e.details(Activities.CreateUserError.class);
            if (details instanceof Activities.CreateUserError.Conflict conflict) {
                return conflict.value().email();
            }
            throw e;
        }
    }
}
