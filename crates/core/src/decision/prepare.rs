//! The checks that need no store read (event shape, payment type, requirement, scheme), and the
//! hand-over to the checks that do.

use serde_json::Value;

use super::checks::check;
use super::scheme::scheme_terms;
use super::{AmountView, DecisionContext, Outcome};
use crate::reason::ReasonCode;
use crate::records::VerifySnapshot;
use crate::request_url::HttpUrl;
use crate::verify::{parse_request, VerifyRequest, PAYMENT_TYPE_X402};
use crate::x402::{parse_requirement, Requirement};

/// A request that passed the checks needing no store read.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The event.
    pub request: VerifyRequest,
    /// Its requirement.
    pub requirement: Requirement,
}

/// Runs the checks that need no store read: event shape, payment type, requirement, scheme.
pub fn prepare(event: &Value) -> Result<Prepared, Box<Outcome>> {
    let request = parse_request(event)
        .map_err(|p| Box::new(Outcome::declined(ReasonCode::InvalidRequest, p.to_string())))?;
    prepare_request(request)
}

/// As [`prepare`], for a request already parsed (authorize builds one per `accepts` entry).
pub fn prepare_request(request: VerifyRequest) -> Result<Prepared, Box<Outcome>> {
    let with_request = |mut o: Outcome| {
        o.request = Some(request.clone());
        Box::new(o)
    };
    if request.payment_type != PAYMENT_TYPE_X402 {
        return Err(with_request(Outcome::declined(
            ReasonCode::PaymentTypeNotSupported,
            "paymentType: only CRYPTO_X402 is supported",
        )));
    }
    let requirement = parse_requirement(
        request.x402_version,
        &request.requirement,
        request.resource.as_deref(),
    )
    .map_err(|e| {
        with_request(Outcome::declined(
            ReasonCode::RequirementInvalid,
            e.within("requirement").to_string(),
        ))
    })?;
    let mut outcome_base = Outcome::declined(ReasonCode::SchemeNotAllowed, "");
    outcome_base.amount = Some(AmountView {
        atomic: requirement.amount.clone(),
        asset: None,
        micros: None,
        usd: None,
    });
    if let Err((reason, detail)) = scheme_terms(&requirement) {
        outcome_base.reason = reason;
        outcome_base.detail = Some(detail.into());
        outcome_base.requirement = Some(requirement);
        return Err(with_request(outcome_base));
    }
    if !declared_resource_matches(&request, &requirement) {
        outcome_base.reason = ReasonCode::ResourceMismatch;
        outcome_base.detail = Some(
            "the declared resource's origin differs from requestUrl's (scheme, host, port)".into(),
        );
        outcome_base.requirement = Some(requirement);
        return Err(with_request(outcome_base));
    }
    Ok(Prepared {
        request,
        requirement,
    })
}

impl Prepared {
    /// Runs every check that needs the stored records, in the documented order.
    pub fn evaluate(self, snapshot: &VerifySnapshot, ctx: DecisionContext<'_>) -> Outcome {
        self.evaluate_with_own_hold(snapshot, ctx, 0)
    }

    /// As [`Prepared::evaluate`], for a payment whose own open hold of `own_hold_micros` is
    /// already reserved on the session (the same authorize request, continued): the budget
    /// check counts it as available to this payment.
    pub fn evaluate_with_own_hold(
        self,
        snapshot: &VerifySnapshot,
        ctx: DecisionContext<'_>,
        own_hold_micros: u64,
    ) -> Outcome {
        let Prepared {
            request,
            requirement,
        } = self;
        let mut out = Outcome {
            reason: ReasonCode::Approved,
            detail: None,
            amount: Some(AmountView {
                atomic: requirement.amount.clone(),
                asset: None,
                micros: None,
                usd: None,
            }),
            policy_versions: snapshot.policy_versions(),
            consent_required: false,
            authorization_window_seconds: None,
            budgets: Vec::new(),
            usage: Vec::new(),
            request: None,
            requirement: None,
        };
        if let Err((reason, detail)) = check(
            &request,
            &requirement,
            snapshot,
            ctx,
            own_hold_micros,
            &mut out,
        ) {
            out.reason = reason;
            out.detail = Some(detail);
        }
        out.request = Some(request);
        out.requirement = Some(requirement);
        out
    }
}

/// A resource the merchant declares must be on the origin the tool requested; one that does not
/// parse cannot be shown to be, so it does not match. Nothing to compare passes.
fn declared_resource_matches(request: &VerifyRequest, requirement: &Requirement) -> bool {
    match (&request.request_url, &requirement.resource) {
        (Some(requested), Some(declared)) => {
            HttpUrl::parse(declared).is_ok_and(|d| d.same_origin(requested))
        }
        _ => true,
    }
}
