package stubcheck

import (
	"encoding/json"
	"testing"

	"example.com/stubcheck/activities"
)

// The host writes a variant case as {"case": payload} and reads it back the same way.
func TestVariantsRoundTripTheHostsJSON(t *testing.T) {
	var failure activities.CreateUserError
	in := `{"invalid":["name: must not be empty"]}`
	if err := json.Unmarshal([]byte(in), &failure); err != nil {
		t.Fatal(err)
	}
	if failure.Invalid == nil || (*failure.Invalid)[0] != "name: must not be empty" || failure.Conflict != nil {
		t.Fatalf("decoded %+v", failure)
	}
	out, err := json.Marshal(failure)
	if err != nil || string(out) != in {
		t.Fatalf("encoded %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"nope":1}`), &failure); err == nil {
		t.Fatal("an unknown case was accepted")
	}
	if _, err := json.Marshal(activities.CreateUserError{}); err == nil {
		t.Fatal("a variant with no case set was written")
	}
}

// Records use the host's keys; an option left nil is left out.
func TestRecordsUseTheHostsKeys(t *testing.T) {
	out, err := json.Marshal(activities.User{UserId: "u", Email: "e@x.io", Name: "N"})
	if err != nil || string(out) != `{"user_id":"u","email":"e@x.io","name":"N"}` {
		t.Fatalf("encoded %s, %v", out, err)
	}
}
