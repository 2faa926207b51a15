//! The `messages` worker's methods, called directly on SQLite and on PostgreSQL.

use intercomm_workers::access::not_found;
use intercomm_workers::messages::{
    GetMessage, ListMessages, Message, MessagePage, MessageSent, SendMessage, get_message,
    list_messages, send_message,
};
use intercomm_workers::{RecordingSink, Services};
use serde_json::json;

use crate::helpers::{
    TestDb, as_user, assert_forbidden, assert_invalid_params, assert_rfc3339_utc, assert_uuid,
    decode_error, each_backend, internal, params,
};

/// Send `body` from `sender` to `receiver` as `sender`.
async fn send(services: &Services, sender: &str, receiver: &str, body: &str) -> MessageSent {
    send_message(
        services.clone(),
        as_user("send_message", sender),
        params(json!({"sender": sender, "receiver": receiver, "body": body})),
    )
    .await
    .expect("sending works")
}

/// One page of `user`'s messages, asked by `user`.
async fn page(services: &Services, user: &str, limit: u32, before: Option<&str>) -> MessagePage {
    list_messages(
        services.clone(),
        as_user("list_messages", user),
        params(json!({"user_id": user, "limit": limit, "before": before})),
    )
    .await
    .expect("listing works")
}

/// A sent message reads back whole for its sender, its receiver and an internal caller; the
/// receiver — and only the receiver — gets one NEW_MESSAGE event describing it.
#[tokio::test]
async fn a_sent_message_reads_back_and_is_announced_to_the_receiver() {
    each_backend(|db: TestDb| async move {
        let sent = send(&db.services, "ann", "bob", "merhaba ✓").await;
        assert_uuid(&sent.message_id, 7);
        assert_rfc3339_utc(&sent.sent_at);

        let expected = Message {
            message_id: sent.message_id.clone(),
            sender: "ann".into(),
            receiver: "bob".into(),
            body: "merhaba ✓".into(),
            sent_at: sent.sent_at.clone(),
        };
        for context in [
            as_user("get_message", "ann"),
            as_user("get_message", "bob"),
            internal("get_message"),
        ] {
            let message = get_message(
                db.services.clone(),
                context,
                params(json!({"message_id": sent.message_id})),
            )
            .await
            .expect("sender, receiver and internal callers may read");
            assert_eq!(message, expected);
        }

        assert_eq!(
            db.events.events_for("bob"),
            vec![json!({
                "type": "NEW_MESSAGE",
                "message_id": sent.message_id,
                "sender": "ann",
                "receiver": "bob",
                "sent_at": sent.sent_at,
            })]
        );
        assert!(db.events.events_for("ann").is_empty());
    })
    .await;
}

/// A third user asking for a message gets exactly the -32002 a missing id gets, so ids cannot
/// be probed; an upper-case spelling of the id finds the message too.
#[tokio::test]
async fn a_third_user_cannot_tell_a_message_from_a_missing_one() {
    each_backend(|db: TestDb| async move {
        let sent = send(&db.services, "ann", "bob", "private").await;
        let hidden = get_message(
            db.services.clone(),
            as_user("get_message", "eve"),
            params(json!({"message_id": sent.message_id})),
        )
        .await
        .expect_err("eve neither sent nor received it");
        assert_eq!(
            hidden,
            not_found("message", "/message_id", &sent.message_id)
        );

        let missing_id = uuid::Uuid::now_v7().hyphenated().to_string();
        let missing = get_message(
            db.services.clone(),
            as_user("get_message", "ann"),
            params(json!({"message_id": missing_id})),
        )
        .await
        .expect_err("no such message");
        assert_eq!(missing, not_found("message", "/message_id", &missing_id));
        assert_eq!(
            (hidden.code, &hidden.message),
            (missing.code, &missing.message)
        );
        assert_eq!(hidden.code, -32002);

        let upper = get_message(
            db.services.clone(),
            as_user("get_message", "bob"),
            params(json!({"message_id": sent.message_id.to_uppercase()})),
        )
        .await
        .expect("ids are matched in canonical form");
        assert_eq!(upper.message_id, sent.message_id);
    })
    .await;
}

/// Listing pages through everything a user sent or received, newest first, with
/// `next_before` pointing at the last message of a page and `null` on the last page — also
/// when the last page is exactly full. Other users' conversations never appear.
#[tokio::test]
async fn listing_pages_newest_first_through_sent_and_received_messages() {
    each_backend(|db: TestDb| async move {
        let mut ids = Vec::new();
        for (index, (sender, receiver)) in [
            ("ann", "bob"),
            ("bob", "ann"),
            ("ann", "carol"),
            ("carol", "ann"),
            ("ann", "ann"),
        ]
        .into_iter()
        .enumerate()
        {
            ids.push(
                send(&db.services, sender, receiver, &format!("#{index}"))
                    .await
                    .message_id,
            );
            // Not ann's: must never show up in her list.
            send(&db.services, "bob", "carol", "aside").await;
        }
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

        let first = page(&db.services, "ann", 2, None).await;
        let second = page(&db.services, "ann", 2, first.next_before.as_deref()).await;
        let third = page(&db.services, "ann", 2, second.next_before.as_deref()).await;
        let listed = |page: &MessagePage| -> Vec<String> {
            page.messages.iter().map(|m| m.message_id.clone()).collect()
        };
        assert_eq!(listed(&first), newest_first[0..2]);
        assert_eq!(first.next_before.as_deref(), Some(newest_first[1].as_str()));
        assert_eq!(listed(&second), newest_first[2..4]);
        assert_eq!(
            second.next_before.as_deref(),
            Some(newest_first[3].as_str())
        );
        assert_eq!(listed(&third), newest_first[4..5]);
        assert_eq!(third.next_before, None, "no more after the last page");
        assert_eq!(third.messages[0].body, "#0");
        assert_eq!(third.messages[0].sender, "ann");

        // A page that ends exactly at the last message says there are no more.
        let exact = page(&db.services, "ann", 5, None).await;
        assert_eq!(listed(&exact), newest_first);
        assert_eq!(exact.next_before, None);

        // The self-addressed message is listed once; the default limit is 20.
        let all = list_messages(
            db.services.clone(),
            as_user("list_messages", "ann"),
            params(json!({"user_id": "ann"})),
        )
        .await
        .expect("listing works");
        assert_eq!(listed(&all), newest_first);

        // Carol sees only her own conversations with ann and bob.
        let carol = page(&db.services, "carol", 100, None).await;
        assert_eq!(carol.messages.len(), 2 + 5);
        assert!(
            carol
                .messages
                .iter()
                .all(|m| m.sender == "carol" || m.receiver == "carol")
        );
    })
    .await;
}

/// `limit` is 1 to 100: both ends work, anything else is -32602 at `/limit`.
#[tokio::test]
async fn limits_outside_one_to_a_hundred_are_invalid_params() {
    each_backend(|db: TestDb| async move {
        for _ in 0..3 {
            send(&db.services, "ann", "bob", "hi").await;
        }
        assert_eq!(page(&db.services, "ann", 1, None).await.messages.len(), 1);
        assert_eq!(page(&db.services, "ann", 100, None).await.messages.len(), 3);
        for bad in [json!(0), json!(101), json!(-1), json!("5"), json!(2.5)] {
            let error =
                decode_error::<ListMessages>(json!({"user_id": "ann", "limit": bad.clone()}));
            assert_invalid_params(&error, "/limit");
        }
        let error = decode_error::<ListMessages>(json!({"user_id": "ann", "before": "nope"}));
        assert_invalid_params(&error, "/before");
    })
    .await;
}

/// The worker refuses, with -32005, a subject acting for someone else: listing another user's
/// messages, or sending as another sender (nothing is stored or published then).
#[tokio::test]
async fn acting_for_another_user_is_forbidden() {
    each_backend(|db: TestDb| async move {
        send(&db.services, "ann", "bob", "hi").await;
        let error = list_messages(
            db.services.clone(),
            as_user("list_messages", "eve"),
            params(json!({"user_id": "ann"})),
        )
        .await
        .expect_err("eve may not list ann's messages");
        assert_forbidden(&error, "/user_id");

        let error = send_message(
            db.services.clone(),
            as_user("send_message", "eve"),
            params(json!({"sender": "ann", "receiver": "bob", "body": "forged"})),
        )
        .await
        .expect_err("eve may not send as ann");
        assert_forbidden(&error, "/sender");
        assert_eq!(
            db.events.events().len(),
            1,
            "only the first message was announced"
        );
        let listed = list_messages(
            db.services.clone(),
            internal("list_messages"),
            params(json!({"user_id": "ann"})),
        )
        .await
        .expect("internal callers may list anyone's messages");
        assert_eq!(listed.messages.len(), 1);
    })
    .await;
}

/// Bad params are -32602 at the field: user ids, empty or over-long bodies, unknown fields,
/// ids that are not UUIDs. A body of 10 000 multi-byte characters is fine.
#[tokio::test]
async fn bad_params_are_invalid_params_at_the_field() {
    let ok = |body: String| json!({"sender": "ann", "receiver": "bob", "body": body});
    let _: SendMessage = params(ok("é".repeat(10_000)));
    assert_invalid_params(&decode_error::<SendMessage>(ok(String::new())), "/body");
    assert_invalid_params(
        &decode_error::<SendMessage>(ok("x".repeat(10_001))),
        "/body",
    );
    assert_invalid_params(
        &decode_error::<SendMessage>(json!({"sender": "a b", "receiver": "bob", "body": "x"})),
        "/sender",
    );
    assert_invalid_params(
        &decode_error::<SendMessage>(json!({"sender": "ann", "receiver": "", "body": "x"})),
        "/receiver",
    );
    let unknown = decode_error::<SendMessage>(
        json!({"sender": "ann", "receiver": "bob", "body": "x", "urgent": true}),
    );
    assert_eq!(unknown.code, -32602);
    assert!(
        unknown.data.expect("data")["message"]
            .as_str()
            .is_some_and(|m| m.contains("urgent"))
    );
    let missing = decode_error::<SendMessage>(json!({"sender": "ann", "receiver": "bob"}));
    assert_eq!(missing.code, -32602);
    assert_invalid_params(
        &decode_error::<GetMessage>(json!({"message_id": "X9J0UI76GBWQTF"})),
        "/message_id",
    );
}

/// A broker that refuses events does not fail sending: the message is stored and readable.
#[tokio::test]
async fn a_failed_event_does_not_fail_the_send() {
    each_backend(|db: TestDb| async move {
        let failing = RecordingSink::new();
        failing.set_failing(true);
        let services = Services::new(db.services.store.clone(), failing.clone());
        let sent = send(&services, "ann", "bob", "still stored").await;
        assert!(failing.events().is_empty());
        let message = get_message(
            services.clone(),
            as_user("get_message", "bob"),
            params(json!({"message_id": sent.message_id})),
        )
        .await
        .expect("the message was stored");
        assert_eq!(message.body, "still stored");
    })
    .await;
}
