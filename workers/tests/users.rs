//! The `users` worker's methods, called directly on SQLite and on PostgreSQL.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use intercomm_workers::Services;
use intercomm_workers::access::not_found;
use intercomm_workers::users::{
    AddBufferMsg, BUFFER_MAX_BYTES, Buffer, UserMessage, add_buffer_msg, get_buffer_msg,
    user_message,
};
use serde_json::{Value, json};

use crate::helpers::{
    TestDb, as_user, assert_forbidden, assert_invalid_params, assert_rfc3339_utc, assert_uuid,
    decode_error, each_backend, internal, params,
};

/// Store `content` for `user` as `user`; the new buffer's id.
async fn add(services: &Services, user: &str, content: &[u8]) -> String {
    add_buffer_msg(
        services.clone(),
        as_user("add_buffer_msg", user),
        params(json!({"user_id": user, "buffer_msg": STANDARD.encode(content)})),
    )
    .await
    .expect("storing a buffer works")
    .buffer_uuid
}

async fn get(services: &Services, user: &str, buffer_uuid: &str) -> Buffer {
    get_buffer_msg(
        services.clone(),
        as_user("get_buffer_msg", user),
        params(json!({"buffer_uuid": buffer_uuid})),
    )
    .await
    .expect("the owner may read the buffer")
}

/// Binary content — every byte value, including sequences that are not UTF-8 — comes back
/// byte for byte, and its user gets one BUFFER_READY event.
#[tokio::test]
async fn binary_content_round_trips_and_is_announced() {
    each_backend(|db: TestDb| async move {
        let mut content: Vec<u8> = vec![0xC3, 0x28, 0xFF, 0xFE, 0x00, 0x80];
        content.extend(0..=255u8);
        assert!(std::str::from_utf8(&content).is_err());
        let buffer_uuid = add(&db.services, "ann", &content).await;
        assert_uuid(&buffer_uuid, 4);

        let buffer = get(&db.services, "ann", &buffer_uuid).await;
        assert_eq!(buffer.buffer_uuid, buffer_uuid);
        assert_eq!(buffer.user_id, "ann");
        assert_eq!(
            STANDARD.decode(&buffer.buffer_msg).expect("base64"),
            content
        );
        assert_eq!(buffer.buffer_msg, STANDARD.encode(&content));
        assert_rfc3339_utc(&buffer.created_at);

        assert_eq!(
            db.events.events_for("ann"),
            vec![json!({"type": "BUFFER_READY", "buffer_uuid": buffer_uuid, "user_id": "ann"})]
        );
        assert_eq!(db.events.events().len(), 1);

        // Empty content is content too.
        let empty = add(&db.services, "ann", b"").await;
        assert_eq!(get(&db.services, "ann", &empty).await.buffer_msg, "");
    })
    .await;
}

/// Content of exactly 1 MiB is stored; one byte more is -32602 at `/buffer_msg`, and nothing
/// is stored or announced.
#[tokio::test]
async fn content_is_limited_to_one_mebibyte() {
    each_backend(|db: TestDb| async move {
        let content: Vec<u8> = (0..BUFFER_MAX_BYTES).map(|i| (i % 251) as u8).collect();
        let buffer_uuid = add(&db.services, "ann", &content).await;
        let buffer = get(&db.services, "ann", &buffer_uuid).await;
        assert_eq!(
            STANDARD.decode(&buffer.buffer_msg).expect("base64").len(),
            BUFFER_MAX_BYTES
        );

        let too_big = vec![7u8; BUFFER_MAX_BYTES + 1];
        let error = add_buffer_msg(
            db.services.clone(),
            as_user("add_buffer_msg", "ann"),
            params(json!({"user_id": "ann", "buffer_msg": STANDARD.encode(&too_big)})),
        )
        .await
        .expect_err("over 1 MiB");
        assert_invalid_params(&error, "/buffer_msg");
        assert_eq!(
            db.events.events().len(),
            1,
            "only the first buffer was announced"
        );
    })
    .await;
}

/// Text that is not standard padded base64 — other characters, missing padding, the URL-safe
/// alphabet, non-canonical trailing bits — is -32602 at `/buffer_msg`; nothing is announced.
#[tokio::test]
async fn bad_base64_is_invalid_params_at_buffer_msg() {
    each_backend(|db: TestDb| async move {
        for bad in ["not base64!", "QQ", "QUJD-_==", "QR==", "QUJD\n"] {
            let error = add_buffer_msg(
                db.services.clone(),
                as_user("add_buffer_msg", "ann"),
                params(json!({"user_id": "ann", "buffer_msg": bad})),
            )
            .await
            .expect_err("not standard base64");
            assert_invalid_params(&error, "/buffer_msg");
            assert!(
                error.data.as_ref().expect("data")["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("base64")),
                "{error:?}"
            );
        }
        assert!(db.events.events().is_empty());
    })
    .await;
}

/// Another user's buffer is -32002 exactly like a missing one, and storing a buffer for
/// someone else is -32005; an internal caller may read any buffer.
#[tokio::test]
async fn buffers_are_private_to_their_user() {
    each_backend(|db: TestDb| async move {
        let buffer_uuid = add(&db.services, "ann", b"secret").await;
        let hidden = get_buffer_msg(
            db.services.clone(),
            as_user("get_buffer_msg", "eve"),
            params(json!({"buffer_uuid": buffer_uuid})),
        )
        .await
        .expect_err("eve does not own it");
        assert_eq!(hidden, not_found("buffer", "/buffer_uuid", &buffer_uuid));
        let missing_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let missing = get_buffer_msg(
            db.services.clone(),
            as_user("get_buffer_msg", "ann"),
            params(json!({"buffer_uuid": missing_id})),
        )
        .await
        .expect_err("no such buffer");
        assert_eq!(missing, not_found("buffer", "/buffer_uuid", &missing_id));
        assert_eq!(hidden.code, -32002);

        let read = get_buffer_msg(
            db.services.clone(),
            internal("get_buffer_msg"),
            params(json!({"buffer_uuid": buffer_uuid})),
        )
        .await
        .expect("internal callers may read");
        assert_eq!(read.user_id, "ann");

        let error = add_buffer_msg(
            db.services.clone(),
            as_user("add_buffer_msg", "eve"),
            params(json!({"user_id": "ann", "buffer_msg": "AAEC"})),
        )
        .await
        .expect_err("eve may not store for ann");
        assert_forbidden(&error, "/user_id");
    })
    .await;
}

/// Each allowed type is recorded with its data as it came (any JSON, `null` included).
#[tokio::test]
async fn each_allowed_type_is_recorded_with_its_data() {
    each_backend(|db: TestDb| async move {
        let cases = [
            ("FRAME_RENDERED", json!({"frame": 12, "of": 240})),
            ("RENDER_COMPLETED", json!([1, "two", {"three": 3.5}])),
            ("TEST", Value::Null),
        ];
        let mut ids = Vec::new();
        for (kind, data) in &cases {
            let recorded = user_message(
                db.services.clone(),
                as_user("user_message", "ann"),
                params(json!({"user_id": "ann", "type": kind, "data": data})),
            )
            .await
            .expect("recording works");
            assert_uuid(&recorded.id, 7);
            assert_rfc3339_utc(&recorded.recorded_at);
            ids.push(recorded.id);
        }
        let stored = db
            .services
            .store
            .user_messages_of("ann")
            .await
            .expect("reading back works");
        assert_eq!(stored.len(), 3);
        for ((record, (kind, data)), id) in stored.iter().zip(&cases).zip(&ids) {
            assert_eq!(&record.id, id);
            assert_eq!(record.message_type, *kind);
            let stored_data: Value = serde_json::from_str(&record.data_json).expect("JSON");
            assert_eq!(&stored_data, data);
        }

        let error = user_message(
            db.services.clone(),
            as_user("user_message", "eve"),
            params(json!({"user_id": "ann", "type": "TEST", "data": {}})),
        )
        .await
        .expect_err("eve may not record for ann");
        assert_forbidden(&error, "/user_id");
    })
    .await;
}

/// An unknown type is -32602 at `/type` whose message names the three allowed types (what the
/// runtime's decoding answers); a missing or oversized `data` is -32602 too.
#[tokio::test]
async fn an_unknown_type_names_the_allowed_ones() {
    let error = decode_error::<UserMessage>(json!({"user_id": "ann", "type": "PING", "data": 1}));
    assert_invalid_params(&error, "/type");
    let message = error.data.expect("data")["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    for allowed in ["FRAME_RENDERED", "RENDER_COMPLETED", "TEST"] {
        assert!(message.contains(allowed), "{message}");
    }
    assert!(message.contains("PING"), "{message}");

    let missing = decode_error::<UserMessage>(json!({"user_id": "ann", "type": "TEST"}));
    assert_eq!(missing.code, -32602);
    assert!(
        missing.data.expect("data")["message"]
            .as_str()
            .is_some_and(|m| m.contains("data"))
    );

    each_backend(|db: TestDb| async move {
        let big = "x".repeat(intercomm_workers::users::DATA_MAX_BYTES);
        let error = user_message(
            db.services.clone(),
            as_user("user_message", "ann"),
            params(json!({"user_id": "ann", "type": "TEST", "data": {"blob": big}})),
        )
        .await
        .expect_err("data over 64 KiB");
        assert_invalid_params(&error, "/data");
        assert!(
            db.services
                .store
                .user_messages_of("ann")
                .await
                .expect("read")
                .is_empty()
        );
    })
    .await;
}

/// Params the schema forbids are refused by decoding too: unknown fields, bad user ids.
#[test]
fn unknown_fields_and_bad_user_ids_are_invalid_params() {
    let error =
        decode_error::<AddBufferMsg>(json!({"user_id": "ann", "buffer_msg": "", "extra": 1}));
    assert_eq!(error.code, -32602);
    let error = decode_error::<AddBufferMsg>(json!({"user_id": "ann/..", "buffer_msg": ""}));
    assert_invalid_params(&error, "/user_id");
}
