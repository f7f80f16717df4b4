//! The AWS permissions each deployment needs, by the template's logical resource names. The
//! integration tests hold these against the calls the store code really makes (recorded from the
//! SDK) and against the policies in `template.yaml`: DynamoDB Local ignores IAM, so nothing else
//! would notice a missing or excess grant.

use std::collections::BTreeSet;

/// One function of the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deployment {
    /// `VerifyFunction`.
    Verify,
    /// `LedgerFunction` (agent-facing ops).
    LedgerAgent,
    /// `LedgerAdminFunction` (openSession, closeSession, getSession).
    LedgerAdmin,
    /// `LedgerExpireFunction` (expire).
    LedgerSchedule,
    /// `AuthorizeFunction` (enforcing mode): decide, reserve, sign, mark sent.
    Authorize,
}

impl Deployment {
    /// Every deployment.
    pub const ALL: [Deployment; 5] = [
        Deployment::Verify,
        Deployment::LedgerAgent,
        Deployment::LedgerAdmin,
        Deployment::LedgerSchedule,
        Deployment::Authorize,
    ];

    /// The function's logical id in `template.yaml`.
    pub fn logical_id(self) -> &'static str {
        match self {
            Deployment::Verify => "VerifyFunction",
            Deployment::LedgerAgent => "LedgerFunction",
            Deployment::LedgerAdmin => "LedgerAdminFunction",
            Deployment::LedgerSchedule => "LedgerExpireFunction",
            Deployment::Authorize => "AuthorizeFunction",
        }
    }
}

/// An IAM action on a template resource: (`dynamodb:Query`, `LedgerTable/index/open-holds`).
/// `bedrock-agentcore:` grants are on the `PaymentManagerArn` parameter and exist only when the
/// template's `Enforcing` condition holds.
pub type Grant = (&'static str, &'static str);

/// What each deployment's code calls, per action and resource.
pub fn grants(deployment: Deployment) -> BTreeSet<Grant> {
    let keys = ("secretsmanager:GetSecretValue", "KeysSecret");
    let grants: Vec<Grant> = match deployment {
        // One BatchGetItem over the three tables (DynamoStore::read_for_verify).
        Deployment::Verify => vec![
            ("dynamodb:BatchGetItem", "PoliciesTable"),
            ("dynamodb:BatchGetItem", "RegistryTable"),
            ("dynamodb:BatchGetItem", "LedgerTable"),
            keys,
        ],
        // reserve: a transaction of a Put, an Update and ConditionChecks; markSent and failed
        // settlements: UpdateItem; commit/release: a transaction of Updates, or GetItem first
        // without the amount; getSession: Query; getHold: GetItem.
        Deployment::LedgerAgent => vec![
            ("dynamodb:PutItem", "LedgerTable"),
            ("dynamodb:UpdateItem", "LedgerTable"),
            ("dynamodb:GetItem", "LedgerTable"),
            ("dynamodb:Query", "LedgerTable"),
            ("dynamodb:ConditionCheckItem", "PoliciesTable"),
            ("dynamodb:ConditionCheckItem", "RegistryTable"),
            keys,
        ],
        // openSession: conditional PutItem, after creating (CreatePaymentSession) or reading
        // (GetPaymentSession) the AgentCore session in enforcing mode; closeSession: UpdateItem;
        // getSession: Query. The only CreatePaymentSession grant of the template.
        Deployment::LedgerAdmin => vec![
            ("dynamodb:PutItem", "LedgerTable"),
            ("dynamodb:UpdateItem", "LedgerTable"),
            ("dynamodb:Query", "LedgerTable"),
            keys,
            (
                "bedrock-agentcore:CreatePaymentSession",
                "PaymentManagerArn",
            ),
            ("bedrock-agentcore:GetPaymentSession", "PaymentManagerArn"),
        ],
        // expire: Query on the open-holds index, then a transaction of Updates per hold.
        Deployment::LedgerSchedule => vec![
            ("dynamodb:Query", "LedgerTable/index/open-holds"),
            ("dynamodb:UpdateItem", "LedgerTable"),
            keys,
        ],
        // The decision's BatchGetItem; reserve's transaction; markSent's UpdateItem; release's
        // transaction of Updates; the hold of an earlier call of the same request (GetItem);
        // and the only ProcessPayment grant of the deployment.
        Deployment::Authorize => vec![
            ("dynamodb:BatchGetItem", "PoliciesTable"),
            ("dynamodb:BatchGetItem", "RegistryTable"),
            ("dynamodb:BatchGetItem", "LedgerTable"),
            ("dynamodb:PutItem", "LedgerTable"),
            ("dynamodb:UpdateItem", "LedgerTable"),
            ("dynamodb:GetItem", "LedgerTable"),
            ("dynamodb:ConditionCheckItem", "PoliciesTable"),
            ("dynamodb:ConditionCheckItem", "RegistryTable"),
            keys,
            ("bedrock-agentcore:ProcessPayment", "PaymentManagerArn"),
        ],
    };
    grants.into_iter().collect()
}
