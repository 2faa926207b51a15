//! The `subscriptions` worker's methods, called directly on SQLite and on PostgreSQL.

use intercomm_workers::Services;
use intercomm_workers::subscriptions::{
    Delivered, PublishEvent, Subscription, SubscriptionState, Topics, list_subscriptions,
    publish_event, subscribe_user, unsubscribe_user,
};
use serde_json::{Value, json};

use crate::helpers::{
    TestDb, as_user, assert_forbidden, assert_invalid_params, decode_error, each_backend, internal,
    params,
};

async fn subscribe(services: &Services, user: &str, topic: &str) -> SubscriptionState {
    subscribe_user(
        services.clone(),
        as_user("subscribe_user", user),
        params(json!({"user_id": user, "topic": topic})),
    )
    .await
    .expect("subscribing works")
}

async fn unsubscribe(services: &Services, user: &str, topic: &str) -> SubscriptionState {
    unsubscribe_user(
        services.clone(),
        as_user("unsubscribe_user", user),
        params(json!({"user_id": user, "topic": topic})),
    )
    .await
    .expect("unsubscribing works")
}

async fn topics(services: &Services, user: &str) -> Vec<String> {
    let Topics { topics } = list_subscriptions(
        services.clone(),
        as_user("list_subscriptions", user),
        params(json!({"user_id": user})),
    )
    .await
    .expect("listing works");
    topics
}

async fn publish(services: &Services, topic: &str, payload: Value) -> u64 {
    let Delivered { delivered } = publish_event(
        services.clone(),
        internal("publish_event"),
        params(json!({"topic": topic, "payload": payload})),
    )
    .await
    .expect("publishing works");
    delivered
}

/// Subscribing twice is the same as once, and the list is sorted by byte value (`a.b` before
/// `ab` on both databases, whatever PostgreSQL's collation).
#[tokio::test]
async fn subscribing_is_idempotent_and_lists_sorted() {
    each_backend(|db: TestDb| async move {
        for topic in ["news", "ab", "a.b", "alerts-1", "0day"] {
            for _ in 0..2 {
                assert_eq!(
                    subscribe(&db.services, "ann", topic).await,
                    SubscriptionState {
                        user_id: "ann".into(),
                        topic: topic.into(),
                        subscribed: true,
                    }
                );
            }
        }
        assert_eq!(
            topics(&db.services, "ann").await,
            ["0day", "a.b", "ab", "alerts-1", "news"]
        );
        assert!(topics(&db.services, "bob").await.is_empty());
    })
    .await;
}

/// Unsubscribing removes the topic, and unsubscribing again (or from a topic never followed)
/// answers the same.
#[tokio::test]
async fn unsubscribing_is_idempotent() {
    each_backend(|db: TestDb| async move {
        subscribe(&db.services, "ann", "news").await;
        subscribe(&db.services, "ann", "sports").await;
        for _ in 0..2 {
            assert_eq!(
                unsubscribe(&db.services, "ann", "news").await,
                SubscriptionState {
                    user_id: "ann".into(),
                    topic: "news".into(),
                    subscribed: false,
                }
            );
        }
        assert!(!unsubscribe(&db.services, "ann", "never").await.subscribed);
        assert_eq!(topics(&db.services, "ann").await, ["sports"]);
    })
    .await;
}

/// An event published to a topic reaches each subscriber exactly once as a TOPIC_EVENT with
/// the payload, and nobody else; `delivered` counts the subscribers. A topic nobody follows
/// delivers to nobody, and an unsubscribed user no longer gets events.
#[tokio::test]
async fn publishing_fans_out_to_subscribers_only() {
    each_backend(|db: TestDb| async move {
        subscribe(&db.services, "ann", "news").await;
        subscribe(&db.services, "bob", "news").await;
        subscribe(&db.services, "carol", "sports").await;
        let payload = json!({"headline": "hi", "n": [1, 2, {"x": null}]});

        assert_eq!(publish(&db.services, "news", payload.clone()).await, 2);
        let expected = json!({"type": "TOPIC_EVENT", "topic": "news", "payload": payload});
        assert_eq!(db.events.events_for("ann"), vec![expected.clone()]);
        assert_eq!(db.events.events_for("bob"), vec![expected]);
        assert!(db.events.events_for("carol").is_empty());

        assert_eq!(publish(&db.services, "nobody-here", json!(1)).await, 0);
        unsubscribe(&db.services, "bob", "news").await;
        assert_eq!(publish(&db.services, "news", Value::Null).await, 1);
        assert_eq!(db.events.events_for("bob").len(), 1);
        assert_eq!(db.events.events_for("ann")[1]["payload"], Value::Null);
        assert_eq!(db.events.events().len(), 3);
    })
    .await;
}

/// A fan-out larger than one page of subscribers reaches every subscriber exactly once.
#[tokio::test]
async fn a_fan_out_over_several_pages_reaches_everyone_once() {
    each_backend(|db: TestDb| async move {
        let count = intercomm_workers::subscriptions::FANOUT_PAGE as usize + 7;
        for index in 0..count {
            db.services
                .store
                .subscribe(&format!("user{index:04}"), "big", 0)
                .await
                .expect("subscribing works");
        }
        assert_eq!(
            publish(&db.services, "big", json!("hello")).await,
            count as u64
        );
        let mut users: Vec<String> = db
            .events
            .events()
            .into_iter()
            .map(|(user, _)| user)
            .collect();
        users.sort();
        users.dedup();
        assert_eq!(users.len(), count);
        assert_eq!(db.events.events().len(), count);
    })
    .await;
}

/// The worker refuses, with -32005, a subject (un)subscribing or listing for someone else, and
/// nothing changes.
#[tokio::test]
async fn acting_for_another_user_is_forbidden() {
    each_backend(|db: TestDb| async move {
        subscribe(&db.services, "ann", "news").await;
        let as_eve = |method: &str| as_user(method, "eve");
        let error = subscribe_user(
            db.services.clone(),
            as_eve("subscribe_user"),
            params(json!({"user_id": "ann", "topic": "spam"})),
        )
        .await
        .expect_err("eve may not subscribe ann");
        assert_forbidden(&error, "/user_id");
        let error = unsubscribe_user(
            db.services.clone(),
            as_eve("unsubscribe_user"),
            params(json!({"user_id": "ann", "topic": "news"})),
        )
        .await
        .expect_err("eve may not unsubscribe ann");
        assert_forbidden(&error, "/user_id");
        let error = list_subscriptions(
            db.services.clone(),
            as_eve("list_subscriptions"),
            params(json!({"user_id": "ann"})),
        )
        .await
        .expect_err("eve may not list ann's topics");
        assert_forbidden(&error, "/user_id");
        assert_eq!(topics(&db.services, "ann").await, ["news"]);
    })
    .await;
}

/// Topic names follow `[a-z0-9][a-z0-9_.-]{0,127}`, and `payload` is required (`null` is a
/// value): anything else is -32602 at the field.
#[tokio::test]
async fn bad_topics_and_missing_payloads_are_invalid_params() {
    for bad in ["", "News", "-x", "a b", "a/b", &"t".repeat(129)] {
        let error = decode_error::<Subscription>(json!({"user_id": "ann", "topic": bad}));
        assert_invalid_params(&error, "/topic");
    }
    let missing = decode_error::<PublishEvent>(json!({"topic": "news"}));
    assert_eq!(missing.code, -32602);
    assert!(
        missing.data.expect("data")["message"]
            .as_str()
            .is_some_and(|m| m.contains("payload")),
    );
    let null: PublishEvent = params(json!({"topic": "news", "payload": null}));
    assert_eq!(null.payload, Value::Null);
}
