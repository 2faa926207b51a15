//! The AMQP envelope of a job and of a reply (CONTRACT §2): properties and headers, written by
//! callers and read by workers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `content_type` of every job and reply.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Header: the authenticated subject the gateway verified.
pub const HEADER_USER: &str = "x-intercomm-user";
/// Header: the job's deadline (RFC 3339).
pub const HEADER_DEADLINE: &str = "x-intercomm-deadline";
/// Header: W3C trace context.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// Header set by quorum queues: how often the job was delivered before.
pub const HEADER_DELIVERY_COUNT: &str = "x-delivery-count";
/// Persistent delivery mode.
pub const PERSISTENT: u8 = 2;

/// What a caller says about a job besides its body.
#[derive(Clone, Debug, Default)]
pub struct JobEnvelope {
    /// `correlation_id` and `message_id`: the request id as a string.
    pub correlation_id: Option<String>,
    /// The caller's callback queue; `None` for notifications.
    pub reply_to: Option<String>,
    /// The verified subject (`x-intercomm-user`); `None` for trusted internal callers.
    pub user: Option<String>,
    /// The job's deadline: sets `expiration` and `x-intercomm-deadline`.
    pub deadline: Option<SystemTime>,
    /// W3C `traceparent`.
    pub traceparent: Option<String>,
    /// `app_id`: which program published the job.
    pub app_id: Option<String>,
}

impl JobEnvelope {
    /// The AMQP properties for a job with this envelope.
    #[must_use]
    pub fn to_properties(&self) -> BasicProperties {
        let now = SystemTime::now();
        let mut properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE_JSON.into())
            .with_delivery_mode(PERSISTENT)
            .with_timestamp(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        match &self.correlation_id {
            Some(id) => {
                properties = properties
                    .with_correlation_id(id.as_str().into())
                    .with_message_id(id.as_str().into());
            }
            // Notifications have no id to correlate, but every message gets a message_id.
            None => {
                let message_id = uuid::Uuid::now_v7().to_string();
                properties = properties.with_message_id(message_id.as_str().into());
            }
        }
        if let Some(reply_to) = &self.reply_to {
            properties = properties.with_reply_to(reply_to.as_str().into());
        }
        if let Some(app_id) = &self.app_id {
            properties = properties.with_app_id(app_id.as_str().into());
        }
        let mut headers = FieldTable::default();
        if let Some(user) = &self.user {
            headers.insert(HEADER_USER.into(), long_string(user));
        }
        if let Some(traceparent) = &self.traceparent {
            headers.insert(HEADER_TRACEPARENT.into(), long_string(traceparent));
        }
        if let Some(deadline) = self.deadline {
            // A deadline already past still gets a 1 ms expiration rather than none.
            let remaining = deadline.duration_since(now).unwrap_or(Duration::ZERO);
            let millis = remaining.as_millis().max(1);
            properties = properties.with_expiration(ShortString::from(millis.to_string()));
            if let Some(text) = format_rfc3339(deadline) {
                headers.insert(HEADER_DEADLINE.into(), long_string(&text));
            }
        }
        if !headers.inner().is_empty() {
            properties = properties.with_headers(headers);
        }
        properties
    }
}

/// The properties of a reply carrying `correlation_id`.
///
/// No headers: the caller already holds the trace the job continues, and a headers table on
/// every reply costs the broker about 4 % of its throughput (docs/BENCHMARKS.md).
#[must_use]
pub fn reply_properties(correlation_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE_JSON.into())
        .with_delivery_mode(PERSISTENT)
        .with_correlation_id(correlation_id.into())
}

/// What a worker reads off a delivered job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveredJob {
    /// `correlation_id`, copied into the reply.
    pub correlation_id: Option<String>,
    /// Where the reply goes.
    pub reply_to: Option<String>,
    /// `content_type`, when the publisher set one.
    pub content_type: Option<String>,
    /// `x-intercomm-user`.
    pub user: Option<String>,
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// From `x-intercomm-deadline`, else from `timestamp` + `expiration`.
    pub deadline: Option<SystemTime>,
    /// Earlier deliveries of this job (`x-delivery-count`, quorum queues only).
    pub delivery_count: u32,
}

impl DeliveredJob {
    /// Read the envelope of a delivery.
    #[must_use]
    pub fn from_properties(properties: &BasicProperties) -> Self {
        let text = |value: &Option<ShortString>| value.as_ref().map(|v| v.as_str().to_owned());
        let mut job = Self {
            correlation_id: text(properties.correlation_id()),
            reply_to: text(properties.reply_to()).filter(|queue| !queue.is_empty()),
            content_type: text(properties.content_type()),
            ..Self::default()
        };
        if let Some(headers) = properties.headers() {
            let headers = headers.inner();
            job.user = headers.get(HEADER_USER).and_then(value_text);
            job.traceparent = headers.get(HEADER_TRACEPARENT).and_then(value_text);
            job.deadline = headers
                .get(HEADER_DEADLINE)
                .and_then(value_text)
                .and_then(|text| parse_rfc3339(&text));
            job.delivery_count = headers
                .get(HEADER_DELIVERY_COUNT)
                .and_then(value_number)
                .map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX));
        }
        if job.deadline.is_none() {
            job.deadline = deadline_from_expiration(properties);
        }
        job
    }
}

fn deadline_from_expiration(properties: &BasicProperties) -> Option<SystemTime> {
    let millis: u64 = properties.expiration().as_ref()?.as_str().parse().ok()?;
    let published = UNIX_EPOCH + Duration::from_secs((*properties.timestamp())?);
    Some(published + Duration::from_millis(millis))
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn value_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok().map(str::to_owned),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        AMQPValue::ByteArray(bytes) => std::str::from_utf8(bytes.as_slice())
            .ok()
            .map(str::to_owned),
        _ => None,
    }
}

fn value_number(value: &AMQPValue) -> Option<i64> {
    match *value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(n)),
        AMQPValue::ShortInt(n) => Some(i64::from(n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(n)),
        AMQPValue::LongInt(n) => Some(i64::from(n)),
        AMQPValue::LongUInt(n) => Some(i64::from(n)),
        AMQPValue::LongLongInt(n) => Some(n),
        _ => None,
    }
}

/// `time` as RFC 3339 in UTC with millisecond precision.
#[must_use]
pub fn format_rfc3339(time: SystemTime) -> Option<String> {
    let at = OffsetDateTime::from(time);
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .ok()?;
    at.format(&Rfc3339).ok()
}

/// Parse an RFC 3339 timestamp.
#[must_use]
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_envelope_round_trips_through_properties() {
        let deadline = SystemTime::now() + Duration::from_secs(10);
        let envelope = JobEnvelope {
            correlation_id: Some("job-1".into()),
            reply_to: Some("rpc_callback_x".into()),
            user: Some("user_1".into()),
            deadline: Some(deadline),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            app_id: Some("test".into()),
        };
        let properties = envelope.to_properties();
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            properties.message_id().as_ref().map(ShortString::as_str),
            Some("job-1")
        );
        let expiration: u64 = properties
            .expiration()
            .as_ref()
            .expect("expiration set")
            .as_str()
            .parse()
            .expect("milliseconds");
        assert!((9_000..=10_000).contains(&expiration), "{expiration}");

        let job = DeliveredJob::from_properties(&properties);
        assert_eq!(job.correlation_id.as_deref(), Some("job-1"));
        assert_eq!(job.reply_to.as_deref(), Some("rpc_callback_x"));
        assert_eq!(job.content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        assert_eq!(job.user.as_deref(), Some("user_1"));
        assert_eq!(job.traceparent, envelope.traceparent);
        let read = job.deadline.expect("deadline read back");
        let skew = read
            .duration_since(deadline)
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_millis(2), "deadline off by {skew:?}");
        assert_eq!(job.delivery_count, 0);
    }

    #[test]
    fn delivery_count_is_read_from_quorum_header() {
        let mut headers = FieldTable::default();
        headers.insert(HEADER_DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));
        let properties = BasicProperties::default().with_headers(headers);
        assert_eq!(DeliveredJob::from_properties(&properties).delivery_count, 3);
    }

    #[test]
    fn expiration_without_header_still_gives_a_deadline() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let properties = BasicProperties::default()
            .with_timestamp(now)
            .with_expiration("5000".into());
        let deadline = DeliveredJob::from_properties(&properties)
            .deadline
            .expect("deadline");
        assert!(deadline > SystemTime::now());
    }
}
