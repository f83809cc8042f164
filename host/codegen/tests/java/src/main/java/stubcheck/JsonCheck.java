package stubcheck;

import activities.Activities;
import io.temporal.api.common.v1.Payload;
import io.temporal.common.converter.DataConverter;
import io.temporal.common.converter.DataConverterException;
import io.temporal.common.converter.DefaultDataConverter;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

/** The stubs' JSON forms are the host's, written and read by the SDK's own data converter. */
public final class JsonCheck {
    private static final DataConverter CONVERTER = DefaultDataConverter.STANDARD_INSTANCE;

    private JsonCheck() {}

    private static String write(Object value) {
        Optional<Payload> payload = CONVERTER.toPayload(value);
        return payload.orElseThrow().getData().toString(StandardCharsets.UTF_8);
    }

    private static <T> T read(String json, Class<T> type) {
        return read(json, type, type);
    }

    private static <T> T read(String json, Class<T> type, Type generic) {
        Payload payload = CONVERTER.toPayload("").orElseThrow().toBuilder()
                .setData(com.google.protobuf.ByteString.copyFromUtf8(json)).build();
        return CONVERTER.fromPayload(payload, type, generic);
    }

    private static void expect(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] args) {
        // Records use the host's keys.
        String user = write(new Activities.User("u", "e@x.io", "N"));
        expect(user.equals("{\"user_id\":\"u\",\"email\":\"e@x.io\",\"name\":\"N\"}"), user);
        Activities.User back = read(user, Activities.User.class);
        expect(back.userId().equals("u") && back.name().equals("N"), back.toString());

        // A variant case is {"case": payload}, both ways.
        String invalid = "{\"invalid\":[\"name: must not be empty\"]}";
        Activities.CreateUserError failure = read(invalid, Activities.CreateUserError.class);
        expect(failure instanceof Activities.CreateUserError.Invalid, failure.toString());
        List<String> reasons = ((Activities.CreateUserError.Invalid) failure).value();
        expect(reasons.equals(List.of("name: must not be empty")), reasons.toString());
        expect(write(failure).equals(invalid), write(failure));
        String conflict = "{\"conflict\":{\"user_id\":\"u\",\"email\":\"e@x.io\",\"name\":\"N\","
                + "\"version\":1,\"created_at_ms\":5,\"updated_at_ms\":6}}";
        Activities.CreateUserError taken = read(conflict, Activities.CreateUserError.class);
        expect(taken instanceof Activities.CreateUserError.Conflict c && c.value().version() == 1
                && c.value().createdAtMs().longValue() == 5, taken.toString());
        expect(write(taken).equals(conflict), write(taken));
        try {
            read("{\"nope\":1}", Activities.CreateUserError.class);
            throw new AssertionError("an unknown case was accepted");
        } catch (DataConverterException expected) {
            expect(String.valueOf(expected.getCause()).contains("unknown case nope"), expected.toString());
        }

        // Enums are their WIT names; an option is its value or null.
        Activities.Notification note = new Activities.Notification(
                "u", "e@x.io", Activities.NotificationAction.CREATE, "hi");
        String noted = write(note);
        expect(noted.contains("\"action\":\"create\""), noted);
        Activities.SendNotificationOutput sent =
                read("{\"target\":\"host-log\",\"status\":null}", Activities.SendNotificationOutput.class);
        expect(sent.status() == null && sent.target().equals("host-log"), sent.toString());
        sent = read("{\"target\":\"t\",\"status\":204}", Activities.SendNotificationOutput.class);
        expect(sent.status() == 204, sent.toString());

        System.out.println("json forms: ok");
    }
}
