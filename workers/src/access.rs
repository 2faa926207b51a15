//! Who may do what: the workers' own check of the caller (`Context::user`, the subject the
//! gateway verified) against the user a job acts for or reads, and the errors it answers.
//!
//! The gateway already refuses a token whose subject differs from the schema's `claimer`
//! (HTTP 403); workers check again because jobs also arrive without the gateway. A job with no
//! verified subject (`None`) comes from a trusted internal caller and is allowed.
//!
//! # Error codes
//! - **-32005 Forbidden** ([`FORBIDDEN`]): the verified subject differs from the user the job
//!   acts for (`sender`, `user_id`). `data: {"pointer", "message"}` names the param.
//! - **-32002 Not found**: a message or buffer that does not exist *or* that the subject may
//!   not read; both answers are identical, so ids cannot be probed.

use intercomm_core::{Context, ErrorCode, RpcError};

/// -32005: the caller may not act for the user named in params ([`ErrorCode::Forbidden`], the
/// code the gateway answers too).
pub const FORBIDDEN: i32 = ErrorCode::Forbidden.code();

/// The -32005 error for the param at `pointer`.
#[must_use]
pub fn forbidden(pointer: &str) -> RpcError {
    RpcError::forbidden(
        pointer,
        "the authenticated user may only act for themselves",
    )
}

/// Allow the job when it has no verified subject or the subject is `acting_user`; otherwise
/// -32005 naming the param at `pointer`.
///
/// # Errors
/// [`forbidden`] when the subject is someone else.
pub fn ensure_acting_for(
    context: &Context,
    acting_user: &str,
    pointer: &str,
) -> Result<(), RpcError> {
    match context.user() {
        Some(subject) if subject != acting_user => Err(forbidden(pointer)),
        _ => Ok(()),
    }
}

/// Whether the job may read something that belongs to `owners`: yes with no verified subject,
/// otherwise only when the subject is one of them.
#[must_use]
pub fn may_read(context: &Context, owners: &[&str]) -> bool {
    context
        .user()
        .is_none_or(|subject| owners.contains(&subject))
}

/// -32002 for the thing called `what` with id `id`, the same whether it is missing or hidden
/// from the caller.
#[must_use]
pub fn not_found(what: &str, pointer: &str, id: &str) -> RpcError {
    RpcError::not_found(format!("no such {what}")).with_data(serde_json::json!({
        "pointer": pointer,
        "id": id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Internal callers and the user themselves may act; anyone else gets -32005.
    #[test]
    fn only_the_user_or_an_internal_caller_may_act() {
        assert!(ensure_acting_for(&Context::for_test("m", None), "ann", "/sender").is_ok());
        assert!(ensure_acting_for(&Context::for_test("m", Some("ann")), "ann", "/sender").is_ok());
        let error = ensure_acting_for(&Context::for_test("m", Some("bob")), "ann", "/sender")
            .expect_err("bob may not act for ann");
        assert_eq!(error.code, FORBIDDEN);
        assert_eq!(error.message, "Forbidden");
        assert_eq!(error.data.expect("data")["pointer"], "/sender");
    }

    /// Reading is for the owners and internal callers.
    #[test]
    fn only_owners_or_internal_callers_may_read() {
        assert!(may_read(&Context::for_test("m", None), &["ann", "bob"]));
        assert!(may_read(
            &Context::for_test("m", Some("bob")),
            &["ann", "bob"]
        ));
        assert!(!may_read(
            &Context::for_test("m", Some("eve")),
            &["ann", "bob"]
        ));
    }
}
