//! One authorize call: decide among the 402's entries, reserve the chosen one, have it signed,
//! check what was signed, mark it sent, and hand back the payment header.
//!
//! On the happy path that is one BatchGetItem, one TransactWriteItems, one ProcessPayment and
//! one UpdateItem. Failure semantics (DESIGN, "Enforcing mode"): a NO before signing holds
//! nothing; a refused signature releases the hold (`SIGNING_FAILED`); no answer from the signer
//! keeps the hold PENDING and answers `SIGNER_UNAVAILABLE` (the same request again re-sends the
//! same clientToken and continues); a signed payload that differs from the approved terms is
//! discarded, never returned, and the hold released (`SIGNED_PAYLOAD_MISMATCH`); a store failure
//! after signing returns no header (the signature never left predebit, and the PENDING hold's
//! expiry voids it); a replayed authorize returns the same header without a second signature
//! (AgentCore dedupes the clientToken).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::event::{parse_authorize, AuthorizeRequest};
use super::signer::{SignError, SignRequest, Signer};
use crate::audit::SealedAudit;
use crate::decision::SCHEME_UPTO;
use crate::decision::{decide_among, refuse, AmountView, Decision, DecisionContext, Verdict};
use crate::eip712::{signed_by_payer, SignedFor};
use crate::hold::{fingerprint, Hold, HoldState, VALID_BEFORE_SKEW_SECONDS};
use crate::hold_token;
use crate::keys::KeyRing;
use crate::ledger::{AllowedOps, Ledger, LedgerConfig, LedgerStore};
use crate::policy::PolicyCache;
use crate::reason::ReasonCode;
use crate::signed_check::{
    check_signed, Approved, SignedMismatch, X402_EXACT_PERMIT2_PROXY, X402_UPTO_PERMIT2_PROXY,
};
use crate::store::VerifyReader;
use crate::token::{self, TokenClaims};
use crate::verify::EVENT_VERSION;
use crate::x402::payment::parse_payload;

/// Settings read once at start-up.
#[derive(Clone, Debug)]
pub struct AuthorizeConfig {
    /// The spenders an `exact` Permit2 payment may name.
    pub permit2_proxies: Vec<String>,
    /// The spenders an `upto` payment (always Permit2) may name.
    pub upto_permit2_proxies: Vec<String>,
    /// The ledger settings of the holds authorize takes.
    pub ledger: LedgerConfig,
}

impl Default for AuthorizeConfig {
    fn default() -> Self {
        Self {
            permit2_proxies: vec![X402_EXACT_PERMIT2_PROXY.to_string()],
            upto_permit2_proxies: vec![X402_UPTO_PERMIT2_PROXY.to_string()],
            ledger: LedgerConfig {
                allowed: AllowedOps::parse("reserve,markSent,release")
                    .expect("authorize's ops are ledger ops"),
                ..LedgerConfig::default()
            },
        }
    }
}

/// One invocation's context.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizeContext<'a> {
    /// The Lambda request id: the decision's id and the ledger writes' request id.
    pub request_id: &'a str,
    /// Epoch seconds.
    pub now: u64,
    /// The key ring.
    pub keys: &'a KeyRing,
}

/// What one call produced: the answer, the audit record of its decision, and what operators
/// count.
#[derive(Clone, Debug)]
pub struct Authorized {
    /// The response (camelCase JSON).
    pub response: Value,
    /// The decision's sealed audit record.
    pub audit: SealedAudit,
    /// A signature was discarded because it differed from the approved terms.
    pub signed_mismatch: bool,
    /// On a YES: how full the limits the decision read are (for the near-limit alert).
    pub usage: Vec<crate::decision::LimitUsage>,
}

/// The terms a signature must match, from the hold they are reserved on.
struct Terms {
    network: String,
    asset: String,
    pay_to: String,
    amount_atomic: String,
    latest_valid_before: u64,
    upto: bool,
}

impl Terms {
    fn of_claims(claims: &TokenClaims) -> Self {
        Terms {
            network: claims.network.clone(),
            asset: claims.asset.clone(),
            pay_to: claims.pay_to.clone(),
            amount_atomic: claims.amount_atomic.clone(),
            latest_valid_before: claims
                .issued_at
                .saturating_add(claims.authorization_window_seconds)
                .saturating_add(VALID_BEFORE_SKEW_SECONDS),
            upto: claims.scheme == SCHEME_UPTO,
        }
    }

    fn of_hold(hold: &Hold) -> Self {
        Terms {
            network: hold.network.clone(),
            asset: hold.asset.clone(),
            pay_to: hold.pay_to.clone(),
            amount_atomic: hold.amount_atomic.clone(),
            latest_valid_before: hold.latest_valid_before,
            upto: hold.is_upto(),
        }
    }

    fn approved(&self) -> Approved<'_> {
        Approved {
            network: &self.network,
            asset: &self.asset,
            pay_to: &self.pay_to,
            amount_atomic: &self.amount_atomic,
            latest_valid_before: self.latest_valid_before,
            upto: self.upto,
        }
    }
}

/// A hold authorize may sign for: reserved just now, or by an earlier call of the same request.
struct Reserved {
    payment_id: String,
    hold_token: String,
    terms: Terms,
    state: HoldState,
}

/// The authorize service over a verify reader, a ledger store and a signer.
pub struct Authorizer<R, L, S> {
    reader: R,
    ledger: Ledger<L>,
    signer: S,
    config: AuthorizeConfig,
    policies: PolicyCache,
}

impl<R: VerifyReader + Sync, L: LedgerStore + Sync, S: Signer + Sync> Authorizer<R, L, S> {
    /// An authorizer over its ports.
    pub fn new(reader: R, store: L, signer: S, config: AuthorizeConfig) -> Self {
        Self {
            reader,
            ledger: Ledger::new(store, config.ledger.clone()),
            signer,
            config,
            policies: PolicyCache::new(),
        }
    }

    /// The ledger (tests read holds through it).
    pub fn ledger(&self) -> &Ledger<L> {
        &self.ledger
    }

    /// The signer.
    pub fn signer(&self) -> &S {
        &self.signer
    }

    /// A payload that could not be read as an event (not JSON, too deep, too large): NO
    /// `INVALID_REQUEST` naming the problem, with its audit record.
    pub fn refuse_payload(&self, problem: String, ctx: AuthorizeContext<'_>) -> Authorized {
        let dctx = DecisionContext {
            verification_id: ctx.request_id,
            now: ctx.now,
            keys: ctx.keys,
            policies: &self.policies,
        };
        no(&refuse(ReasonCode::InvalidRequest, problem, dctx), None)
    }

    /// Handles one authorize event. Never fails: every refusal is a NO naming its reason.
    pub async fn handle(&self, event: &Value, ctx: AuthorizeContext<'_>) -> Authorized {
        let dctx = DecisionContext {
            verification_id: ctx.request_id,
            now: ctx.now,
            keys: ctx.keys,
            policies: &self.policies,
        };
        let request = match parse_authorize(event) {
            Ok(request) => request,
            Err(problem) => {
                let decision = refuse(ReasonCode::InvalidRequest, problem.to_string(), dctx);
                return no(&decision, None);
            }
        };
        let candidates = || {
            (0..request.entries.len())
                .map(|i| request.verify_request(i))
                .collect::<Vec<_>>()
        };
        let (mut decision, mut chosen) = decide_among(&self.reader, candidates(), &[], dctx).await;
        // The same request again after a lost answer (SIGNER_UNAVAILABLE, a timeout): its own
        // hold is already out of the budget, so a payment that just fitted would be refused.
        // Only then are this request's holds looked up, and the decision made again with them.
        // Budgets across sessions count the own hold too: the same second look applies.
        if matches!(
            decision.response.reason_code,
            ReasonCode::SessionBudgetExceeded | ReasonCode::BudgetExceeded
        ) {
            let own = self.own_open_holds(&request, &candidates()).await;
            if !own.is_empty() {
                (decision, chosen) = decide_among(&self.reader, candidates(), &own, dctx).await;
            }
        }
        let Some(token) = decision.response.decision_token.clone() else {
            return no(&decision, None);
        };
        let entry = &request.entries[chosen];
        let reserved = match self.reserve(&request, &token, ctx).await {
            Ok(reserved) => reserved,
            Err((reason, message)) => {
                // The ledger's own answer already says what happened.
                let mut answer = no_because(&decision, reason, "", None);
                if !message.is_empty() {
                    answer.response["message"] = json!(message);
                }
                return answer;
            }
        };
        if !reserved.state.is_open() {
            let reason = if reserved.state == HoldState::Posted {
                ReasonCode::HoldAlreadyPosted
            } else {
                ReasonCode::HoldAlreadyVoided
            };
            return no_because(&decision, reason, "", Some(&reserved.payment_id));
        }
        let sign = SignRequest {
            payment_session_id: request.payment_session_id.clone(),
            payment_instrument_id: request.payment_instrument_id.clone(),
            user_id: request.user_id.clone(),
            agent_name: request.agent_id.clone(),
            client_token: reserved.payment_id.clone(),
            x402_version: request.x402_version,
            requirement: entry.clone(),
            // AgentCore's model takes permit2AllowanceLimit for the `upto` scheme only and refuses
            // it for `exact`; an exact Permit2 payment is bounded by its signed amount, which the
            // post-sign check holds to the approved one. For `upto` the wallet's Permit2
            // allowance is set to the approved maximum, never more.
            permit2_allowance_limit: reserved
                .terms
                .upto
                .then(|| reserved.terms.amount_atomic.clone()),
        };
        let signed = match self.signer.sign(&sign).await {
            Ok(signed) => signed,
            Err(SignError::Unavailable(_)) => {
                // The hold stays PENDING: the same request re-sends the same clientToken.
                return no_because(
                    &decision,
                    ReasonCode::SignerUnavailable,
                    "",
                    Some(&reserved.payment_id),
                );
            }
            Err(SignError::Refused(_)) => {
                self.release(&request, &reserved, "SIGNING_FAILED", ctx)
                    .await;
                return no_because(
                    &decision,
                    ReasonCode::SigningFailed,
                    "",
                    Some(&reserved.payment_id),
                );
            }
        };
        let terms = match self.check(&signed.payload, &reserved.terms, entry, ctx.now) {
            Ok(terms) => terms,
            Err(mismatch) => {
                self.release(&request, &reserved, "SIGNED_PAYLOAD_MISMATCH", ctx)
                    .await;
                let mut answer = no_because(
                    &decision,
                    ReasonCode::SignedPayloadMismatch,
                    &format!("{mismatch}; the signature was discarded"),
                    Some(&reserved.payment_id),
                );
                answer.signed_mismatch = true;
                return answer;
            }
        };
        let marked = self
            .ledger
            .handle(
                &json!({"version": EVENT_VERSION, "op": "markSent",
                    "paymentSessionId": request.payment_session_id,
                    "paymentId": reserved.payment_id, "holdToken": reserved.hold_token,
                    "signed": terms}),
                ctx.keys,
                ctx.now,
                ctx.request_id,
            )
            .await;
        if marked["ok"] != true {
            let reason = reason_of(&marked);
            if reason != ReasonCode::StoreUnavailable {
                self.release(&request, &reserved, "SIGNED_PAYLOAD_MISMATCH", ctx)
                    .await;
            }
            // No header: the signature never leaves predebit, and the PENDING hold expires.
            return no_because(&decision, reason, "", Some(&reserved.payment_id));
        }
        let header = payment_header(&request, entry, &signed.payload);
        let mut response = answer(
            &decision,
            ReasonCode::Approved,
            "",
            Some(&reserved.payment_id),
        );
        response["decision"] = json!(Verdict::Yes);
        response["holdToken"] = json!(reserved.hold_token);
        response["paymentHeader"] = header;
        Authorized {
            response,
            audit: decision.audit,
            signed_mismatch: false,
            usage: decision.usage,
        }
    }

    /// The open holds an earlier call of this request reserved, by paymentId (one per entry at
    /// most: predebit computes the paymentId, so only the same tool call, entry and attempt meet
    /// it), with their amounts; another agent's hold is never counted (the session is the user's:
    /// the decision checks it).
    async fn own_open_holds(
        &self,
        request: &AuthorizeRequest,
        candidates: &[Option<crate::verify::VerifyRequest>],
    ) -> Vec<(String, u64)> {
        let mut own = Vec::new();
        for candidate in candidates.iter().flatten() {
            if let Ok(Some(hold)) = self
                .ledger
                .store()
                .read_hold(&request.payment_session_id, &candidate.payment_id)
                .await
            {
                if hold.state.is_open() && hold.agent_id == request.agent_id {
                    own.push((hold.payment_id, hold.amount_micros));
                }
            }
        }
        own
    }

    /// Reserves the decision's payment, or finds the hold an earlier call of the same request
    /// reserved (same paymentId, agent and terms: predebit computes the paymentId itself, so
    /// only the same tool call, entry and attempt meet it).
    async fn reserve(
        &self,
        request: &AuthorizeRequest,
        token: &str,
        ctx: AuthorizeContext<'_>,
    ) -> Result<Reserved, (ReasonCode, String)> {
        let claims =
            token::verify(token, ctx.keys, ctx.now).map_err(|e| (e.reason(), String::new()))?;
        let reserved = self
            .ledger
            .handle(
                &json!({"version": EVENT_VERSION, "op": "reserve", "decisionToken": token}),
                ctx.keys,
                ctx.now,
                ctx.request_id,
            )
            .await;
        if reserved["ok"] == true {
            let state = serde_json::from_value(reserved["hold"]["state"].clone())
                .unwrap_or(HoldState::Pending);
            return Ok(Reserved {
                payment_id: claims.payment_id.clone(),
                hold_token: reserved["holdToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                terms: Terms::of_claims(&claims),
                state,
            });
        }
        let reason = reason_of(&reserved);
        let message = reserved["message"].as_str().unwrap_or_default().to_string();
        if reason != ReasonCode::IdempotencyConflict {
            return Err((reason, message));
        }
        let found = self
            .ledger
            .store()
            .read_hold(&claims.payment_session_id, &claims.payment_id)
            .await
            .map_err(|_| (ReasonCode::StoreUnavailable, String::new()))?;
        let expected = fingerprint(
            &claims.payment_session_id,
            &claims.payment_id,
            &claims.network,
            &claims.asset,
            &claims.pay_to,
            &claims.amount_atomic,
            claims.amount_micros,
        );
        match found {
            Some(hold) if hold.agent_id == request.agent_id && hold.fingerprint == expected => {
                Ok(Reserved {
                    payment_id: hold.payment_id.clone(),
                    hold_token: hold_token::issue_for(&hold, &request.user_id, ctx.keys),
                    terms: Terms::of_hold(&hold),
                    state: hold.state,
                })
            }
            _ => Err((reason, message)),
        }
    }

    /// The signed terms, checked against the approved ones, as markSent records them.
    fn check(
        &self,
        payload: &Value,
        terms: &Terms,
        entry: &Value,
        now: u64,
    ) -> Result<Value, SignedMismatch> {
        let (_, signed) =
            parse_payload(payload, &terms.network, None).map_err(|_| SignedMismatch::Unreadable)?;
        let signed = signed.ok_or(SignedMismatch::Unreadable)?;
        let proxies: Vec<&str> = if terms.upto {
            &self.config.upto_permit2_proxies
        } else {
            &self.config.permit2_proxies
        }
        .iter()
        .map(String::as_str)
        .collect();
        check_signed(&signed, terms.approved(), &proxies, now)?;
        // The fields agree; now the signature itself: made by its `from`, over the approved
        // chain, token, recipient and amount (EIP-712), with the token's domain from the entry.
        let chain_id = terms
            .network
            .strip_prefix("eip155:")
            .and_then(|id| id.parse().ok())
            .ok_or(SignedMismatch::Unreadable)?;
        let domain = match (
            entry["extra"]["name"].as_str(),
            entry["extra"]["version"].as_str(),
        ) {
            (Some(name), Some(version)) => Some((name, version)),
            _ => None,
        };
        let signed_for = SignedFor {
            chain_id,
            asset: &terms.asset,
            pay_to: &terms.pay_to,
            amount_atomic: &terms.amount_atomic,
            domain,
            upto: terms.upto,
        };
        if !signed_by_payer(payload, signed_for) {
            return Err(SignedMismatch::Signature);
        }
        let mut record = json!({
            "to": signed.to,
            "value": signed.value,
            "network": terms.network,
            "validBefore": signed.valid_before.ok_or(SignedMismatch::NoExpiry)?,
        });
        if let Some(asset) = signed.asset {
            record["asset"] = json!(asset);
        }
        // The nonce tells this signature from another one over the same terms (markSent refuses a
        // second signature for a SENT hold).
        let nonce = payload["authorization"]["nonce"]
            .as_str()
            .or(payload["permit2Authorization"]["nonce"].as_str());
        if let Some(nonce) = nonce {
            record["nonce"] = json!(nonce);
        }
        Ok(record)
    }

    /// Releases a hold never sent; a failure is left to the PENDING window's expiry.
    async fn release(
        &self,
        request: &AuthorizeRequest,
        reserved: &Reserved,
        reason: &str,
        ctx: AuthorizeContext<'_>,
    ) {
        let _ = self
            .ledger
            .handle(
                &json!({"version": EVENT_VERSION, "op": "release",
                    "paymentSessionId": request.payment_session_id,
                    "paymentId": reserved.payment_id, "holdToken": reserved.hold_token,
                    "reason": reason}),
                ctx.keys,
                ctx.now,
                ctx.request_id,
            )
            .await;
    }
}

/// The header the paid request carries: v1 `X-PAYMENT`, v2 `PAYMENT-SIGNATURE`, base64 JSON.
fn payment_header(request: &AuthorizeRequest, entry: &Value, payload: &Value) -> Value {
    let (name, body) = if request.x402_version == 1 {
        (
            "X-PAYMENT",
            json!({"x402Version": 1, "scheme": entry["scheme"], "network": entry["network"],
                "payload": payload}),
        )
    } else {
        let mut body = json!({"x402Version": 2, "accepted": entry, "payload": payload});
        if let Some(resource) = &request.resource_object {
            body["resource"] = resource.clone();
        }
        ("PAYMENT-SIGNATURE", body)
    };
    json!({"name": name, "value": STANDARD.encode(body.to_string())})
}

fn reason_of(response: &Value) -> ReasonCode {
    serde_json::from_value(response["reasonCode"].clone()).unwrap_or(ReasonCode::StoreUnavailable)
}

/// The answer's common fields, from the decision.
fn answer(
    decision: &Decision,
    reason: ReasonCode,
    detail: &str,
    payment_id: Option<&str>,
) -> Value {
    let message = if detail.is_empty() {
        reason.message().to_string()
    } else {
        format!("{} ({detail})", reason.message())
    };
    let mut v = json!({
        "version": EVENT_VERSION,
        "decision": Verdict::No,
        "reasonCode": reason,
        "message": message,
        "verificationId": decision.response.verification_id,
        "auditHash": decision.response.audit_hash,
    });
    if let Some(id) = payment_id {
        v["paymentId"] = json!(id);
    }
    if let Some(amount) = &decision.response.amount {
        v["amount"] = amount_json(amount);
    }
    v
}

fn amount_json(amount: &AmountView) -> Value {
    serde_json::to_value(amount).expect("amounts serialize")
}

/// The decision's own NO.
fn no(decision: &Decision, payment_id: Option<&str>) -> Authorized {
    let mut response = answer(decision, decision.response.reason_code, "", payment_id);
    response["message"] = json!(decision.response.message);
    Authorized {
        response,
        audit: decision.audit.clone(),
        signed_mismatch: false,
        usage: Vec::new(),
    }
}

/// A NO after a YES decision (the ledger, the signer or the check refused).
fn no_because(
    decision: &Decision,
    reason: ReasonCode,
    detail: &str,
    payment_id: Option<&str>,
) -> Authorized {
    Authorized {
        response: answer(decision, reason, detail, payment_id),
        audit: decision.audit.clone(),
        signed_mismatch: false,
        usage: Vec::new(),
    }
}
