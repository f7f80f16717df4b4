//! AgentCore payment sessions as the admin ledger sees them: the port it creates and reads them
//! through (`CreatePaymentSession`, `GetPaymentSession`), and the rule a predebit session is held
//! to against the AgentCore session it budgets: same user, a USD `maxSpendAmount` at or above
//! predebit's limit, an expiry at or after predebit's, and not expired.
//!
//! AgentCore's session has no status: a deleted session is not found, and an expired one is
//! known by `createdAt + expiryTimeInMinutes`.

use std::future::Future;

use crate::money::parse_usd_floor;
use crate::reason::ReasonCode;

/// The shortest `clientToken` AgentCore accepts.
pub const CLIENT_TOKEN_MIN: usize = 33;
/// The longest `clientToken` AgentCore accepts.
pub const CLIENT_TOKEN_MAX: usize = 256;
/// The shortest session AgentCore creates, in minutes.
pub const EXPIRY_MINUTES_MIN: u32 = 15;
/// The longest session AgentCore creates, in minutes.
pub const EXPIRY_MINUTES_MAX: u32 = 480;
/// The longest `userId` AgentCore accepts.
pub const USER_ID_MAX: usize = 120;

/// An amount as AgentCore writes it: a decimal string and a currency name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionAmount {
    /// The decimal, as AgentCore wrote it (not yet trusted to be one).
    pub value: String,
    /// The currency's name (`USD` is the only one AgentCore's model lists).
    pub currency: String,
}

/// A payment session as AgentCore answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentSession {
    /// AgentCore's id (`payment-session-...`).
    pub payment_session_id: String,
    /// The wallet owner AgentCore holds the session for.
    pub user_id: String,
    /// `limits.maxSpendAmount`; `None` when the session has no limits (AgentCore then caps
    /// nothing).
    pub max_spend: Option<SessionAmount>,
    /// When AgentCore created it, epoch seconds rounded down.
    pub created_at: i64,
    /// `expiryTimeInMinutes`, as AgentCore answered it.
    pub expiry_minutes: i64,
}

impl PaymentSession {
    /// When AgentCore expires it (epoch seconds, exclusive): `createdAt + expiryTimeInMinutes`.
    /// `createdAt` is rounded down, so this is never later than AgentCore's own instant.
    /// `None` when the answer cannot be a real session (negative or overflowing times).
    pub fn expires_at(&self) -> Option<u64> {
        let end = self
            .expiry_minutes
            .checked_mul(60)
            .and_then(|s| self.created_at.checked_add(s))?;
        u64::try_from(end).ok().filter(|_| self.expiry_minutes > 0)
    }
}

/// What the admin ledger asks AgentCore to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateSession<'a> {
    /// The wallet owner.
    pub user_id: &'a str,
    /// `maxSpendAmount`, micro-USD (sent as a USD decimal).
    pub limit_micros: u64,
    /// `expiryTimeInMinutes`, 15 to 480.
    pub expiry_minutes: u32,
    /// AgentCore's idempotency key: the same token returns the same session.
    pub client_token: &'a str,
}

/// Why AgentCore gave no session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentSessionError {
    /// AgentCore stated a refusal (validation, access, quota, subscription): nothing was created.
    /// The text is predebit's, never AgentCore's.
    Refused(&'static str),
    /// The clientToken was used before with other terms.
    Conflict,
    /// No answer, throttled or a server error: the outcome is unknown. Sending the same
    /// clientToken again returns the session if one was created.
    Unavailable(&'static str),
}

/// The admin ledger's port to AgentCore's payment sessions.
pub trait PaymentSessions {
    /// `CreatePaymentSession`: a session for the user with `maxSpendAmount` = the limit.
    fn create(
        &self,
        request: &CreateSession<'_>,
    ) -> impl Future<Output = Result<PaymentSession, PaymentSessionError>> + Send;
    /// `GetPaymentSession` as the user; `None` when AgentCore does not know it (for this user
    /// and payment manager).
    fn get(
        &self,
        payment_session_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<PaymentSession>, PaymentSessionError>> + Send;
}

/// A deployment without a payment manager: it never reaches AgentCore (no value exists).
#[derive(Clone, Copy, Debug)]
pub enum NoPaymentSessions {}

impl PaymentSessions for NoPaymentSessions {
    async fn create(&self, _: &CreateSession<'_>) -> Result<PaymentSession, PaymentSessionError> {
        match *self {}
    }

    async fn get(&self, _: &str, _: &str) -> Result<Option<PaymentSession>, PaymentSessionError> {
        match *self {}
    }
}

/// The predebit session to be opened against an AgentCore session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms<'a> {
    /// The session's id, as asked (or as AgentCore created it).
    pub payment_session_id: &'a str,
    /// The wallet owner.
    pub user_id: &'a str,
    /// predebit's limit, micro-USD.
    pub limit_micros: u64,
    /// predebit's expiry; `None` takes AgentCore's.
    pub expires_at: Option<u64>,
}

/// Holds the predebit session to the AgentCore session's terms at `now`. On success, the expiry
/// predebit stores (the asked one, or AgentCore's). A refusal names the problem, never a value.
pub fn check(
    found: &PaymentSession,
    terms: &Terms<'_>,
    now: u64,
) -> Result<u64, (ReasonCode, &'static str)> {
    if found.payment_session_id != terms.payment_session_id {
        return Err((
            ReasonCode::AgentCoreSessionUnknown,
            "AgentCore answered with another session",
        ));
    }
    if found.user_id != terms.user_id {
        return Err((
            ReasonCode::AgentCoreSessionUserMismatch,
            "the AgentCore session's userId is not this userId",
        ));
    }
    let Some(agentcore_expires_at) = found.expires_at() else {
        return Err((
            ReasonCode::AgentCoreSessionExpired,
            "the AgentCore session's createdAt and expiryTimeInMinutes give no expiry",
        ));
    };
    if now >= agentcore_expires_at {
        return Err((
            ReasonCode::AgentCoreSessionExpired,
            "the AgentCore session has expired",
        ));
    }
    let Some(max_spend) = &found.max_spend else {
        return Err((
            ReasonCode::AgentCoreLimitUnusable,
            "the AgentCore session has no maxSpendAmount",
        ));
    };
    if max_spend.currency != "USD" {
        return Err((
            ReasonCode::AgentCoreLimitUnusable,
            "the AgentCore session's maxSpendAmount is not in USD",
        ));
    }
    // Rounded down: a limit at or below it is at or below AgentCore's exact amount.
    let Ok(max_spend_micros) = parse_usd_floor(&max_spend.value) else {
        return Err((
            ReasonCode::AgentCoreLimitUnusable,
            "the AgentCore session's maxSpendAmount is not a plain decimal",
        ));
    };
    if terms.limit_micros > max_spend_micros {
        return Err((
            ReasonCode::AgentCoreLimitExceeded,
            "limit is above the AgentCore session's maxSpendAmount",
        ));
    }
    match terms.expires_at {
        None => Ok(agentcore_expires_at),
        Some(t) if t > agentcore_expires_at => Err((
            ReasonCode::AgentCoreExpiryExceeded,
            "the expiry is later than the AgentCore session's",
        )),
        Some(t) => Ok(t),
    }
}

/// Whether `token` is a clientToken AgentCore takes: 33 to 256 ASCII letters, digits and `-`,
/// starting and ending with a letter or digit (the model's `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}`).
pub fn is_client_token(token: &str) -> bool {
    let bytes = token.as_bytes();
    (CLIENT_TOKEN_MIN..=CLIENT_TOKEN_MAX).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn found(value: &str) -> PaymentSession {
        PaymentSession {
            payment_session_id: "payment-session-abcdefghij12345".into(),
            user_id: "alice".into(),
            max_spend: Some(SessionAmount {
                value: value.into(),
                currency: "USD".into(),
            }),
            created_at: NOW as i64 - 60,
            expiry_minutes: 60,
        }
    }

    fn terms(limit_micros: u64, expires_at: Option<u64>) -> Terms<'static> {
        Terms {
            payment_session_id: "payment-session-abcdefghij12345",
            user_id: "alice",
            limit_micros,
            expires_at,
        }
    }

    fn reason(r: Result<u64, (ReasonCode, &'static str)>) -> ReasonCode {
        r.expect_err("refused").0
    }

    #[test]
    fn a_limit_at_agentcores_max_spend_passes_with_agentcores_expiry() {
        let expires = check(&found("5.00"), &terms(5_000_000, None), NOW);
        assert_eq!(expires, Ok(NOW - 60 + 3600));
    }

    #[test]
    fn a_limit_one_micro_above_agentcores_max_spend_is_refused() {
        let r = check(&found("5.00"), &terms(5_000_001, None), NOW);
        assert_eq!(reason(r), ReasonCode::AgentCoreLimitExceeded);
    }

    #[test]
    fn agentcore_amounts_below_a_micro_round_down_so_the_check_stays_conservative() {
        // 0.0000019 USD is 1.9 micro-USD: a limit of 2 micro-USD would be above it
        assert_eq!(
            reason(check(&found("0.0000019"), &terms(2, None), NOW)),
            ReasonCode::AgentCoreLimitExceeded
        );
        assert!(check(&found("0.0000019"), &terms(1, None), NOW).is_ok());
        assert_eq!(
            reason(check(&found("0.0000001"), &terms(1, None), NOW)),
            ReasonCode::AgentCoreLimitExceeded
        );
    }

    #[test]
    fn a_huge_agentcore_max_spend_caps_nothing_predebit_can_hold() {
        let huge = format!("{}.99", "9".repeat(60));
        assert!(check(&found(&huge), &terms(u64::MAX, None), NOW).is_ok());
    }

    #[test]
    fn an_agentcore_amount_that_is_not_a_plain_decimal_is_unusable_not_guessed() {
        for value in [
            "1e3", "-1", "+5", "", " 5", "5 ", "0x10", "5,00", "1.", ".5", "NaN", "Infinity",
            "1_000", "٥", "5.00 USD",
        ] {
            assert_eq!(
                reason(check(&found(value), &terms(0, None), NOW)),
                ReasonCode::AgentCoreLimitUnusable,
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_session_without_limits_or_in_another_currency_is_unusable() {
        let mut no_limits = found("5.00");
        no_limits.max_spend = None;
        assert_eq!(
            reason(check(&no_limits, &terms(1, None), NOW)),
            ReasonCode::AgentCoreLimitUnusable
        );
        let mut euros = found("5.00");
        euros.max_spend.as_mut().unwrap().currency = "EUR".into();
        assert_eq!(
            reason(check(&euros, &terms(1, None), NOW)),
            ReasonCode::AgentCoreLimitUnusable
        );
    }

    #[test]
    fn another_users_session_is_refused_before_its_limit_is_read() {
        let mut other = found("not a number");
        other.user_id = "bob".into();
        assert_eq!(
            reason(check(&other, &terms(1, None), NOW)),
            ReasonCode::AgentCoreSessionUserMismatch
        );
    }

    #[test]
    fn an_answer_for_another_session_id_is_not_taken_for_the_one_asked() {
        let mut other = found("5.00");
        other.payment_session_id = "payment-session-zzzzzzzzzzzzzzz".into();
        assert_eq!(
            reason(check(&other, &terms(1, None), NOW)),
            ReasonCode::AgentCoreSessionUnknown
        );
    }

    #[test]
    fn an_expired_agentcore_session_is_refused_at_its_expiry_instant() {
        let session = found("5.00");
        let end = session.expires_at().unwrap();
        assert!(check(&session, &terms(1, None), end - 1).is_ok());
        assert_eq!(
            reason(check(&session, &terms(1, None), end)),
            ReasonCode::AgentCoreSessionExpired
        );
    }

    #[test]
    fn nonsense_times_are_an_expired_session_not_an_overflow() {
        for (created_at, expiry_minutes) in [(i64::MAX, 60), (-10_000, 60), (0, 0), (0, -5)] {
            let mut s = found("5.00");
            s.created_at = created_at;
            s.expiry_minutes = expiry_minutes;
            assert_eq!(
                reason(check(&s, &terms(1, None), NOW)),
                ReasonCode::AgentCoreSessionExpired,
                "{created_at} {expiry_minutes}"
            );
        }
    }

    #[test]
    fn an_expiry_after_agentcores_is_refused_and_one_at_or_before_it_is_kept() {
        let session = found("5.00");
        let end = session.expires_at().unwrap();
        assert_eq!(check(&session, &terms(1, Some(end)), NOW), Ok(end));
        assert_eq!(check(&session, &terms(1, Some(end - 1)), NOW), Ok(end - 1));
        assert_eq!(
            reason(check(&session, &terms(1, Some(end + 1)), NOW)),
            ReasonCode::AgentCoreExpiryExceeded
        );
    }

    #[test]
    fn refusal_details_carry_no_value_from_agentcore() {
        let mut s = found("SECRET-looking 1e3");
        s.user_id = "SECRET-user".into();
        for session in [s.clone(), {
            let mut t = s.clone();
            t.user_id = "alice".into();
            t
        }] {
            let (_, detail) = check(&session, &terms(1, None), NOW).unwrap_err();
            assert!(!detail.contains("SECRET"), "{detail}");
        }
    }

    #[test]
    fn client_tokens_follow_agentcores_model() {
        assert!(is_client_token(&"a".repeat(33)));
        assert!(is_client_token(&format!("backend-{}", "0".repeat(32))));
        assert!(is_client_token(&"Z".repeat(256)));
        for bad in [
            "a".repeat(32),
            "a".repeat(257),
            format!("-{}", "a".repeat(33)),
            format!("{}-", "a".repeat(33)),
            format!("{}_x", "a".repeat(33)),
            format!("{} x", "a".repeat(33)),
            format!("{}é", "a".repeat(33)),
        ] {
            assert!(!is_client_token(&bad), "{bad:?}");
        }
    }
}
