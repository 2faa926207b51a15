//! Logging set-up and W3C trace context (`traceparent`) for jobs.

use std::fmt;

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset. lapin's own logs are off: intercomm logs the errors lapin
/// returns, and lapin would otherwise log returned messages whole, bodies included.
pub const DEFAULT_FILTER: &str = "info,lapin=off";

/// Log format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Install the global subscriber once: `RUST_LOG` (default [`DEFAULT_FILTER`]) filters, `format` shapes.
/// Later calls do nothing, so tests may call it freely.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A W3C trace context: which trace a job belongs to and which span caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 128-bit trace id (never zero).
    pub trace_id: u128,
    /// 64-bit id of the parent span (never zero).
    pub span_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// A new trace, sampled.
    #[must_use]
    pub fn new_root() -> Self {
        let random = uuid::Uuid::new_v4().as_u128();
        Self {
            trace_id: random.max(1),
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// The same trace with a new span id (for what this process publishes on).
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parse a `traceparent` header (version 00); `None` when malformed.
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let context = Self {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            span_id: u64::from_str_radix(span, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (context.trace_id != 0 && context.span_id != 0).then_some(context)
    }

    /// The trace id as 32 hex digits.
    #[must_use]
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

fn new_span_id() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = TraceContext::parse(header).expect("valid header");
        assert_eq!(context.to_string(), header);
        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_ne!(child.span_id, context.span_id);
    }

    #[test]
    fn malformed_traceparent_is_refused() {
        for header in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-xyz-b7ad6b7169203331-01",
        ] {
            assert!(TraceContext::parse(header).is_none(), "{header}");
        }
    }

    #[test]
    fn a_new_root_is_well_formed() {
        let header = TraceContext::new_root().to_string();
        assert_eq!(
            TraceContext::parse(&header).map(|c| c.to_string()),
            Some(header)
        );
    }
}
