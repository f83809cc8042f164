package com.example.userservice.workflow;

import com.fasterxml.jackson.annotation.JsonProperty;

/** The seed's request: {"user_id", "email", "name", "action"}. */
public record UserInput(
        @JsonProperty("user_id") String userId,
        @JsonProperty("email") String email,
        @JsonProperty("name") String name,
        @JsonProperty("action") String action) {}
