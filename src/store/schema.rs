//! Diesel table definitions shared by the SQLite and PostgreSQL migrations.
//!
//! Written by hand to match `migrations/{sqlite,postgres}`: both backends use the same column
//! types (BIGINT ids and epoch-millisecond times, TEXT for JSON), so one schema serves both.
//! The migration test compares the two live schemas column by column.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        disabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    guidelines (id) {
        id -> BigInt,
        key -> Text,
        version -> Text,
        title -> Text,
        body -> Text,
        fields -> Text,
        source_toml -> Text,
        sha256 -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    projects (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        guideline_id -> BigInt,
        overlap -> Integer,
        policy -> Text,
        policy_params -> Text,
        blinding -> Bool,
        status -> Text,
        created_at -> BigInt,
        preannotation -> Bool,
        pseudolabel_threshold -> Double,
    }
}

diesel::table! {
    memberships (id) {
        id -> BigInt,
        project_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        pseudonym -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    items (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        sha256 -> Text,
        stored_path -> Text,
        byte_size -> BigInt,
        format -> Text,
        width -> Integer,
        height -> Integer,
        metadata -> Text,
        status -> Text,
        round -> Integer,
        extra_grades -> Integer,
        priority -> Double,
        created_at -> BigInt,
        places_held -> Integer,
    }
}

diesel::table! {
    assignments (id) {
        id -> BigInt,
        item_id -> BigInt,
        grader_id -> BigInt,
        round -> Integer,
        leased_until -> BigInt,
        completed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        expired -> Bool,
    }
}

diesel::table! {
    grades (id) {
        id -> BigInt,
        item_id -> BigInt,
        grader_id -> BigInt,
        round -> Integer,
        guideline_id -> BigInt,
        answers -> Text,
        comment -> Text,
        time_spent_ms -> BigInt,
        source -> Text,
        supersedes -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    resolutions (id) {
        id -> BigInt,
        item_id -> BigInt,
        answers -> Text,
        method -> Text,
        decided_by -> Nullable<BigInt>,
        rounds_used -> Integer,
        reason -> Text,
        supersedes -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        item_id -> BigInt,
        round -> Integer,
        author_id -> BigInt,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    model_runs (id) {
        id -> BigInt,
        project_id -> BigInt,
        field -> Text,
        strategy -> Text,
        model_kind -> Text,
        status -> Text,
        progress -> Double,
        metrics -> Text,
        error -> Nullable<Text>,
        started_by -> Nullable<BigInt>,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        settings -> Text,
        stage -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    predictions (id) {
        id -> BigInt,
        run_id -> BigInt,
        item_id -> BigInt,
        probabilities -> Text,
        scores -> Text,
        embedding -> Nullable<Binary>,
        proposal -> Nullable<Text>,
        confidence -> Nullable<Double>,
        accepted_resolution_id -> Nullable<BigInt>,
        priority -> Double,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        project_id -> Nullable<BigInt>,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        object_type -> Text,
        object_id -> Nullable<BigInt>,
        details -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    item_status_counts (project_id, status, slot) {
        project_id -> BigInt,
        status -> Text,
        slot -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    grader_day_counts (project_id, grader_id, day) {
        project_id -> BigInt,
        grader_id -> BigInt,
        day -> BigInt,
        n -> BigInt,
    }
}

diesel::joinable!(projects -> guidelines (guideline_id));
diesel::joinable!(memberships -> projects (project_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(items -> projects (project_id));
diesel::joinable!(assignments -> items (item_id));
diesel::joinable!(grades -> items (item_id));
diesel::joinable!(resolutions -> items (item_id));
diesel::joinable!(messages -> items (item_id));
diesel::joinable!(predictions -> items (item_id));
diesel::joinable!(predictions -> model_runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    guidelines,
    projects,
    memberships,
    items,
    assignments,
    grades,
    resolutions,
    messages,
    model_runs,
    predictions,
    audit_events,
    item_status_counts,
    grader_day_counts,
);
