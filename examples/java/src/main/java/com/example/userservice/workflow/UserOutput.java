package com.example.userservice.workflow;

import com.example.userservice.activities.Activities;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/** What a run did: the stored user (create, update), whether a user was deleted, and the notification. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record UserOutput(
        @JsonProperty("user") Activities.CreateUserOutput user,
        @JsonProperty("deleted") Boolean deleted,
        @JsonProperty("notification") Activities.SendNotificationOutput notification) {}
