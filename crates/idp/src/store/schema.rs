//! Table definitions shared by both backends (see `migrations/sqlite` and
//! `migrations/postgres`, which must stay in step; a contract test compares them).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_key -> Text,
        email_verified -> Bool,
        member_code -> Nullable<Text>,
        given_name -> Text,
        family_name -> Text,
        locale -> Text,
        password_hash -> Nullable<Text>,
        must_reset -> Bool,
        mfa_method -> Text,
        totp_secret_enc -> Nullable<Binary>,
        totp_last_step -> Nullable<BigInt>,
                        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        name_key -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        secret_hash -> Nullable<Binary>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        allowed_scopes -> Text,
        allowed_grants -> Text,
        id_token_alg -> Text,
        first_party -> Bool,
        first_factor -> Text,
        required_level -> Text,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        jwks -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key_enc -> Binary,
        public_jwk -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_transactions (id) {
        id -> Text,
        client_id -> Text,
        request -> Text,
        user_id -> Nullable<Text>,
                step -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        data -> Text,
    }
}

diesel::table! {
    attempt_counters (key) {
        key -> Text,
        password_failures -> Integer,
        second_factor_failures -> Integer,
        window_started_at -> Timestamp,
        lock_count -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sso_sessions (id) {
        id -> Text,
        sid -> Text,
        user_id -> Text,
        auth_time -> Timestamp,
        amr -> Text,
        acr -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    backchannel_deliveries (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        sid -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    one_time_codes (id) {
        id -> Text,
        user_id -> Text,
        purpose -> Text,
        code_hash -> Binary,
        attempts -> Integer,
        max_attempts -> Integer,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        superseded_at -> Nullable<Timestamp>,
        requested_in -> Nullable<Text>,
        requested_from -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Binary,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> Timestamp,
        amr -> Text,
        acr -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        family_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        scope -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        retry_response_enc -> Nullable<Binary>,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        event_type -> Text,
        actor -> Nullable<Text>,
        subject -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
                request_id -> Nullable<Text>,
        detail -> Text,
        chain_index -> Nullable<BigInt>,
        prev_hash -> Nullable<Binary>,
        row_hash -> Nullable<Binary>,
    }
}

diesel::table! {
    user_roles (user_id, role) {
        user_id -> Text,
        role -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    audit_chain_head (id) {
        id -> Integer,
        last_index -> BigInt,
        last_hash -> Binary,
    }
}

diesel::table! {
    audit_checkpoints (chain_index) {
        chain_index -> BigInt,
        row_hash -> Binary,
        created_at -> Timestamp,
        signature -> Text,
    }
}

diesel::joinable!(login_transactions -> clients (client_id));
diesel::joinable!(sso_sessions -> users (user_id));
diesel::joinable!(one_time_codes -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    client_assertions (jti_hash) {
        jti_hash -> Binary,
        client_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    backchannel_deliveries,
    consents,
    attempt_counters,
    client_assertions,
    users,
    clients,
    signing_keys,
    login_transactions,
    sso_sessions,
    one_time_codes,
    authorization_codes,
    refresh_tokens,
    audit_events,
    audit_chain_head,
    audit_checkpoints,
    user_roles,
    email_changes,
    sign_in_policy,
    revoked_access_tokens,
    session_clients,
);

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    session_clients (sid, client_id) {
        sid -> Text,
        client_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    email_changes (user_id) {
        user_id -> Text,
        new_email -> Text,
        new_email_key -> Text,
        requested_by -> Text,
        reason -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_policy (id) {
        id -> Integer,
        policy -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}
