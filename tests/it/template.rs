//! template.yaml against the code: table key schemas, and IAM grants against the calls each
//! deployment really makes (recorded from the SDK on DynamoDB Local, which ignores IAM).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
};
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_ledger::LedgerService;
use predebit_store::iam::{grants, Deployment};
use predebit_store::secrets::KeySource;
use predebit_store::tables::{self, TableNames, ALL};
use predebit_store::DynamoStore;
use predebit_tests::{dynamodb_client_with, repo_root, unique_tables};
use serde_json::json;
use serde_yaml::Value;

use crate::common::{seed_demo, service, test_keys, NOW};
use crate::ledger_flow::pid;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn resource<'a>(template: &'a Value, logical: &str) -> &'a Value {
    &template["Resources"][logical]["Properties"]
}

fn str_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v:?}"))
}

#[test]
fn the_template_tables_have_the_key_schemas_and_indexes_defined_in_code() {
    let t = template();
    for spec in ALL {
        let logical = format!("{}Table", spec.logical);
        let props = resource(&t, &logical);
        let keys: Vec<(String, String)> = props["KeySchema"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    str_of(&k["AttributeName"]).into(),
                    str_of(&k["KeyType"]).into(),
                )
            })
            .collect();
        let mut expected = vec![(spec.hash.name.to_string(), "HASH".to_string())];
        expected.extend(
            spec.range
                .map(|r| (r.name.to_string(), "RANGE".to_string())),
        );
        assert_eq!(keys, expected, "{logical}");

        let defined: BTreeSet<(String, String)> = props["AttributeDefinitions"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    str_of(&a["AttributeName"]).into(),
                    str_of(&a["AttributeType"]).into(),
                )
            })
            .collect();
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for attr in [Some(spec.hash), spec.range].into_iter().flatten() {
            wanted.insert((attr.name.into(), attr.kind.into()));
        }
        for index in spec.indexes {
            for attr in [Some(index.hash), index.range].into_iter().flatten() {
                wanted.insert((attr.name.into(), attr.kind.into()));
            }
        }
        assert_eq!(defined, wanted, "{logical} attribute definitions");

        let indexes: Vec<(String, Vec<String>)> = props["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .map(|i| {
                        let keys = i["KeySchema"]
                            .as_sequence()
                            .unwrap()
                            .iter()
                            .map(|k| str_of(&k["AttributeName"]).to_string())
                            .collect();
                        (str_of(&i["IndexName"]).to_string(), keys)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected_indexes: Vec<(String, Vec<String>)> = spec
            .indexes
            .iter()
            .map(|i| {
                let mut keys = vec![i.hash.name.to_string()];
                keys.extend(i.range.map(|r| r.name.to_string()));
                (i.name.to_string(), keys)
            })
            .collect();
        assert_eq!(indexes, expected_indexes, "{logical} indexes");
        for setting in [
            "PointInTimeRecoverySpecification",
            "SSESpecification",
            "DeletionProtectionEnabled",
        ] {
            assert!(!props[setting].is_null(), "{logical} lacks {setting}");
        }
        assert_eq!(
            t["Resources"][&logical]["DeletionPolicy"],
            Value::from("Retain"),
            "{logical}"
        );
        assert_eq!(
            t["Resources"][&logical]["UpdateReplacePolicy"],
            Value::from("Retain"),
            "{logical}"
        );
    }
}

/// `!GetAtt X.Arn` -> X; `!Ref X` -> X; `!Sub "${X.Arn}/index/i"` -> X/index/i.
fn resource_name(v: &Value) -> String {
    match v {
        Value::Tagged(t) => {
            let inner = str_of(&t.value);
            match t.tag.to_string().as_str() {
                "!GetAtt" => inner.trim_end_matches(".Arn").to_string(),
                "!Ref" => inner.to_string(),
                "!Sub" => inner.replace("${", "").replace(".Arn}", ""),
                other => panic!("unexpected tag {other} in a policy resource"),
            }
        }
        other => panic!("policy resources must name template resources, found {other:?}"),
    }
}

/// A policy's statements, each with the template condition it is under: `!If [Cond, statement,
/// !Ref AWS::NoValue]` grants only when `Cond` holds.
fn statements(policy: &Value) -> Vec<(Option<String>, &Value)> {
    let mut out = Vec::new();
    // A function's policy holds `Statement`; an IAM role's policy holds `PolicyDocument`.
    let listed = policy["Statement"]
        .as_sequence()
        .or_else(|| policy["PolicyDocument"]["Statement"].as_sequence());
    for item in listed.into_iter().flatten() {
        match item {
            Value::Tagged(t) if t.tag == "!If" => {
                let parts = t.value.as_sequence().expect("!If takes a list");
                let otherwise = match &parts[2] {
                    Value::Tagged(r) if r.tag == "!Ref" => str_of(&r.value),
                    other => {
                        panic!("an !If statement's else must be !Ref AWS::NoValue, found {other:?}")
                    }
                };
                assert_eq!(otherwise, "AWS::NoValue");
                out.push((Some(str_of(&parts[0]).to_string()), &parts[1]));
            }
            statement => out.push((None, statement)),
        }
    }
    out
}

/// Every (action, resource) a function's policies grant, and the condition each is under (the
/// statement's `!If`, else the function's own `Condition`).
fn conditional_grants(
    t: &Value,
    deployment: Deployment,
) -> BTreeSet<(String, String, Option<String>)> {
    let function = &t["Resources"][deployment.logical_id()];
    let function_condition = function["Condition"].as_str().map(str::to_string);
    let mut out = BTreeSet::new();
    for policy in function["Properties"]["Policies"].as_sequence().unwrap() {
        for (condition, statement) in statements(policy) {
            assert_eq!(statement["Effect"], Value::from("Allow"));
            let resources: Vec<String> = match &statement["Resource"] {
                Value::Sequence(items) => items.iter().map(resource_name).collect(),
                single => vec![resource_name(single)],
            };
            let condition = condition.or_else(|| function_condition.clone());
            for action in statement["Action"].as_sequence().unwrap() {
                for r in &resources {
                    out.insert((str_of(action).to_string(), r.clone(), condition.clone()));
                }
            }
        }
    }
    out
}

fn template_grants(t: &Value, deployment: Deployment) -> BTreeSet<(String, String)> {
    conditional_grants(t, deployment)
        .into_iter()
        .map(|(a, r, _)| (a, r))
        .collect()
}

fn owned(grants: BTreeSet<(&str, &str)>) -> BTreeSet<(String, String)> {
    grants
        .into_iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

#[test]
fn every_function_is_granted_exactly_what_its_code_needs_and_serves_its_ops() {
    let t = template();
    for deployment in Deployment::ALL {
        assert_eq!(
            template_grants(&t, deployment),
            owned(grants(deployment)),
            "{deployment:?}"
        );
    }
    for (deployment, ops) in [
        (Deployment::LedgerAgent, "agent"),
        (Deployment::LedgerAdmin, "admin"),
        (Deployment::LedgerSchedule, "schedule"),
    ] {
        let env = &resource(&t, deployment.logical_id())["Environment"]["Variables"]
            ["PREDEBIT_LEDGER_OPS"];
        assert_eq!(env, &Value::from(ops), "{deployment:?}");
    }
}

/// Records (action, table) for every DynamoDB call a client makes.
#[derive(Debug, Clone, Default)]
struct CallRecorder(Arc<Mutex<BTreeSet<(String, String)>>>);

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let input = context.input();
        let mut calls: Vec<(String, String)> = Vec::new();
        let mut add = |action: &str, table: &str| {
            calls.push((format!("dynamodb:{action}"), table.to_string()))
        };
        if let Some(i) = input.downcast_ref::<GetItemInput>() {
            add("GetItem", i.table_name().unwrap_or_default());
        } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
            add("PutItem", i.table_name().unwrap_or_default());
        } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
            add("UpdateItem", i.table_name().unwrap_or_default());
        } else if let Some(i) = input.downcast_ref::<QueryInput>() {
            let table = i.table_name().unwrap_or_default();
            match i.index_name() {
                Some(index) => add("Query", &format!("{table}/index/{index}")),
                None => add("Query", table),
            }
        } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
            for table in i
                .request_items()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                add("BatchGetItem", &table);
            }
        } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            for item in i.transact_items() {
                if let Some(p) = item.put() {
                    add("PutItem", p.table_name());
                }
                if let Some(u) = item.update() {
                    add("UpdateItem", u.table_name());
                }
                if let Some(c) = item.condition_check() {
                    add("ConditionCheckItem", c.table_name());
                }
                if let Some(d) = item.delete() {
                    add("DeleteItem", d.table_name());
                }
            }
        } else {
            add("UnrecognisedOperation", "?");
        }
        self.0.lock().unwrap().extend(calls);
        Ok(())
    }
}

impl CallRecorder {
    /// The recorded calls, with table names turned into the template's logical names.
    fn grants(&self, names: &TableNames) -> BTreeSet<(String, String)> {
        let logical = |table: &str| -> String {
            let (base, index) = table
                .split_once("/index/")
                .map_or((table, None), |(b, i)| (b, Some(i)));
            let name = ALL
                .iter()
                .find(|spec| names.name_of(spec) == base)
                .map(|spec| format!("{}Table", spec.logical))
                .unwrap_or_else(|| format!("unknown table {base}"));
            match index {
                Some(i) => format!("{name}/index/{i}"),
                None => name,
            }
        };
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(a, t)| (a.clone(), logical(t)))
            .collect()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The DynamoDB grants of a deployment (the keys secret is read once at cold start, outside).
fn dynamodb_grants(deployment: Deployment) -> BTreeSet<(String, String)> {
    owned(grants(deployment))
        .into_iter()
        .filter(|(a, _)| a.starts_with("dynamodb:"))
        .collect()
}

fn ledger(store: DynamoStore, ops: &str) -> LedgerService<DynamoStore> {
    let config = LedgerConfig {
        allowed: AllowedOps::parse(ops).unwrap(),
        ..LedgerConfig::default()
    };
    LedgerService::new(store, config, KeySource::fixed(test_keys()))
        .with_metrics_sink(Box::new(|_| {}))
}

#[tokio::test]
async fn each_deployment_calls_exactly_the_dynamodb_actions_it_is_granted() {
    // GIVEN a seeded store whose client records every call
    let recorder = CallRecorder::default();
    let client = dynamodb_client_with({
        let r = recorder.clone();
        move |b| b.interceptor(r)
    })
    .await;
    let names = unique_tables("iam");
    tables::create_all(&client, &names).await.unwrap();
    let store = DynamoStore::new(client, names.clone());
    seed_demo(&store).await;
    let (verify, _) = service(store.clone());
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json"))
            .unwrap(),
    )
    .unwrap();
    let approve = |n: u64| {
        let mut e = event.clone();
        e["paymentId"] = json!(pid(n));
        e
    };

    // WHEN verify decides
    recorder.clear();
    let yes = verify.handle_json(&approve(1), "iam", NOW).await;
    assert_eq!(yes["decision"], "YES");
    // THEN it made exactly the calls it is granted
    assert_eq!(recorder.grants(&names), dynamodb_grants(Deployment::Verify));

    // WHEN the agent-facing ledger runs every op it serves
    let mut tokens = Vec::new();
    for n in 2..=4 {
        tokens.push(
            verify.handle_json(&approve(n), "iam", NOW).await["decisionToken"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    recorder.clear();
    let agent = ledger(store.clone(), "agent");
    let session = "ps-alice-main";
    let signed = json!({"to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "value": "1000000", "network": "eip155:8453", "validBefore": NOW + 60});
    let settlement = json!({"success": true, "transaction": format!("0x{}", "ab".repeat(32)), "network": "eip155:8453"});
    let failed = json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": "eip155:8453"});
    let mut hold_tokens = Vec::new();
    for token in &tokens {
        let reserved = agent
            .handle(
                &json!({"version": "1", "op": "reserve", "decisionToken": token}),
                NOW + 1,
            )
            .await;
        assert_eq!(reserved["ok"], true, "{reserved}");
        hold_tokens.push(reserved["holdToken"].clone());
    }
    let [h2, h3, h4] = [&hold_tokens[0], &hold_tokens[1], &hold_tokens[2]];
    for event in [
        json!({"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": pid(2), "holdToken": h2, "signed": signed}),
        json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": pid(2), "holdToken": h2, "settlement": failed}),
        json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": pid(2), "holdToken": h2, "settlement": settlement}),
        json!({"version": "1", "op": "release", "paymentSessionId": session, "paymentId": pid(3), "holdToken": h3, "reason": "NOT_SENT", "amountMicros": 1_000_000}),
        json!({"version": "1", "op": "getSession", "paymentSessionId": session, "holdToken": h4}),
        json!({"version": "1", "op": "getHold", "paymentSessionId": session, "paymentId": pid(4), "holdToken": h4}),
    ] {
        let response = agent.handle(&event, NOW + 2).await;
        assert_eq!(response["ok"], true, "{response}");
    }
    assert_eq!(
        recorder.grants(&names),
        dynamodb_grants(Deployment::LedgerAgent)
    );

    // WHEN the admin ledger opens, reads and closes a session
    recorder.clear();
    let admin = ledger(store.clone(), "admin");
    for event in [
        json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-iam", "userId": "user-alice", "limit": "5.00", "expiryMinutes": 60}),
        json!({"version": "1", "op": "getSession", "paymentSessionId": "ps-iam"}),
        json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-iam", "reason": "test"}),
    ] {
        assert_eq!(admin.handle(&event, NOW).await["ok"], true);
    }
    assert_eq!(
        recorder.grants(&names),
        dynamodb_grants(Deployment::LedgerAdmin)
    );

    // WHEN the schedule expires the hold still PENDING
    recorder.clear();
    let schedule = ledger(store, "schedule");
    let expired = schedule
        .handle(&json!({"version": "1", "op": "expire"}), NOW + 10_000)
        .await;
    assert_eq!(expired["expired"]["pending"], 1, "{expired}");
    assert_eq!(
        recorder.grants(&names),
        dynamodb_grants(Deployment::LedgerSchedule)
    );

    // WHEN authorize pays, is replayed (the earlier call's hold is read) and meets a refusal
    recorder.clear();
    let authorize = crate::authorize::Fixture::over(store_for_authorize(&names, &recorder).await);
    let paid = authorize
        .run(&crate::authorize::sample_event(1), "iam-authorize-1")
        .await;
    assert_eq!(paid["decision"], "YES", "{paid}");
    let again = authorize
        .run(&crate::authorize::sample_event(1), "iam-authorize-2")
        .await;
    assert_eq!(again["decision"], "YES", "{again}");
    authorize.refuse_signing();
    let refused = authorize
        .run(&crate::authorize::sample_event(2), "iam-authorize-3")
        .await;
    assert_eq!(refused["reasonCode"], "SIGNING_FAILED", "{refused}");
    // THEN it made exactly the DynamoDB calls it is granted
    assert_eq!(
        recorder.grants(&names),
        dynamodb_grants(Deployment::Authorize)
    );
}

#[tokio::test]
async fn the_admin_ledger_with_a_payment_manager_calls_exactly_what_it_is_granted() {
    // GIVEN the admin ledger of an enforcing deployment, its DynamoDB and AgentCore calls recorded
    crate::ledger_agentcore_sessions::freeze_clock();
    let recorder = CallRecorder::default();
    let names = unique_tables("iam-admin-agentcore");
    let store = store_for_authorize(&names, &recorder).await;
    tables::create_all(store.client(), &names).await.unwrap();
    let (admin, agentcore) = crate::ledger_agentcore_sessions::admin_ledger_at(
        store,
        predebit_tests::agentcore_endpoint(),
        crate::authorize_agentcore::MANAGER,
    )
    .await;
    let user = "admin-it-iam";
    let existing =
        crate::ledger_agentcore_sessions::existing_agentcore_session(user, "4.00", 60).await;
    recorder.clear();
    // WHEN it creates a session, opens an existing one, reads and closes it
    let created = admin
        .handle(
            &json!({"version": "1", "op": "openSession", "userId": user, "limit": "5.00",
                "expiryMinutes": 60, "clientToken": "it-iam-admin-000000000000000000000000001"}),
            NOW,
        )
        .await;
    assert_eq!(created["ok"], true, "{created}");
    for event in [
        json!({"version": "1", "op": "openSession", "paymentSessionId": existing, "userId": user, "limit": "4.00"}),
        json!({"version": "1", "op": "getSession", "paymentSessionId": existing}),
        json!({"version": "1", "op": "closeSession", "paymentSessionId": existing, "reason": "test"}),
    ] {
        let response = admin.handle(&event, NOW).await;
        assert_eq!(response["ok"], true, "{response}");
    }
    // THEN its DynamoDB calls are its DynamoDB grants, and its AgentCore calls its AgentCore grants
    assert_eq!(
        recorder.grants(&names),
        dynamodb_grants(Deployment::LedgerAdmin)
    );
    let agentcore_grants: BTreeSet<String> = grants(Deployment::LedgerAdmin)
        .into_iter()
        .filter(|(a, r)| a.starts_with("bedrock-agentcore:") && *r == "PaymentManagerArn")
        .map(|(a, _)| a.to_string())
        .collect();
    assert_eq!(agentcore.actions(), agentcore_grants);
}

/// A store over `names` whose client records its calls into `recorder`.
async fn store_for_authorize(names: &TableNames, recorder: &CallRecorder) -> DynamoStore {
    let client = dynamodb_client_with({
        let r = recorder.clone();
        move |b| b.interceptor(r)
    })
    .await;
    DynamoStore::new(client, names.clone())
}

/// The functions whose policies grant `action` (or a wildcard covering it).
fn holders_of(t: &Value, action: &str) -> Vec<String> {
    let mut holders = Vec::new();
    for (logical, resource) in t["Resources"].as_mapping().unwrap() {
        let Some(policies) = resource["Properties"]["Policies"].as_sequence() else {
            continue;
        };
        for policy in policies {
            for (_, statement) in statements(policy) {
                let actions = statement["Action"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                if actions.iter().any(|a| {
                    str_of(a) == action || str_of(a) == "bedrock-agentcore:*" || str_of(a) == "*"
                }) {
                    holders.push(str_of(logical).to_string());
                }
            }
        }
    }
    holders
}

#[test]
fn only_authorize_may_call_process_payment_and_the_deny_statement_names_its_role() {
    let t = template();
    // GIVEN every policy statement of every resource in the template
    let holders = holders_of(&t, "bedrock-agentcore:ProcessPayment");
    // THEN exactly one function's role may sign: AuthorizeFunction's, on the payment manager only
    assert_eq!(holders, vec!["AuthorizeFunction".to_string()]);
    assert!(grants(Deployment::Authorize)
        .contains(&("bedrock-agentcore:ProcessPayment", "PaymentManagerArn")));
    for deployment in Deployment::ALL {
        let signs = grants(deployment)
            .iter()
            .any(|(a, _)| *a == "bedrock-agentcore:ProcessPayment");
        assert_eq!(signs, deployment == Deployment::Authorize, "{deployment:?}");
    }
    // AND the agent runtime role is only ever given lambda:InvokeFunction on verify, the
    // agent-facing ledger and authorize
    assert_eq!(
        agent_invoke_targets(&t),
        vec![
            "AuthorizeFunction.Alias",
            "LedgerFunction.Alias",
            "VerifyFunction.Alias"
        ]
    );
    // AND no role may fetch the wallet provider's credentials to sign around it
    assert!(holders_of(&t, "bedrock-agentcore:GetResourcePaymentToken").is_empty());
    // AND the output deny statement refuses both to every principal but that role
    assert_deny_output(
        &t,
        "ProcessPaymentDenyStatement",
        serde_json::json!([
            "bedrock-agentcore:ProcessPayment",
            "bedrock-agentcore:GetResourcePaymentToken"
        ]),
        "AuthorizeFunctionRole",
    );
}

#[test]
fn only_the_admin_ledger_may_create_payment_sessions_and_only_in_enforcing_mode() {
    let t = template();
    // GIVEN every policy statement of every resource in the template
    // THEN only LedgerAdminFunction's role may create or read AgentCore payment sessions
    for action in [
        "bedrock-agentcore:CreatePaymentSession",
        "bedrock-agentcore:GetPaymentSession",
    ] {
        assert_eq!(
            holders_of(&t, action),
            vec!["LedgerAdminFunction".to_string()],
            "{action}"
        );
    }
    for deployment in Deployment::ALL {
        let creates = grants(deployment)
            .iter()
            .any(|(a, _)| *a == "bedrock-agentcore:CreatePaymentSession");
        assert_eq!(
            creates,
            deployment == Deployment::LedgerAdmin,
            "{deployment:?}"
        );
    }
    // AND no function the agent runtime may invoke holds it
    for target in agent_invoke_targets(&t) {
        let function = target.trim_end_matches(".Alias");
        let deployment = Deployment::ALL
            .into_iter()
            .find(|d| d.logical_id() == function)
            .unwrap();
        assert!(
            !grants(deployment)
                .iter()
                .any(|(a, _)| a.ends_with("PaymentSession")),
            "{function}"
        );
    }
    // AND every AgentCore grant, of any function, is on the payment manager and exists only when
    // the Enforcing condition holds
    for deployment in Deployment::ALL {
        for (action, resource, condition) in conditional_grants(&t, deployment) {
            if action.starts_with("bedrock-agentcore:") {
                assert_eq!(resource, "PaymentManagerArn", "{deployment:?} {action}");
                assert_eq!(
                    condition.as_deref(),
                    Some("Enforcing"),
                    "{deployment:?} {action}"
                );
            }
        }
    }
    // AND the admin function is told the payment manager in enforcing mode only
    let env = &resource(&t, "LedgerAdminFunction")["Environment"]["Variables"]
        ["PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN"];
    let Value::Tagged(choice) = env else {
        panic!("PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN should be an !If, found {env:?}")
    };
    assert_eq!(choice.tag, "!If");
    let parts = choice.value.as_sequence().unwrap();
    assert_eq!(parts[0], Value::from("Enforcing"));
    assert_eq!(resource_name(&parts[1]), "PaymentManagerArn");
    // AND an output deny statement refuses CreatePaymentSession to every principal but its role
    assert_deny_output(
        &t,
        "CreatePaymentSessionDenyStatement",
        "bedrock-agentcore:CreatePaymentSession",
        "LedgerAdminFunctionRole",
    );
}

/// The functions the agent runtime role may invoke.
fn agent_invoke_targets(t: &Value) -> Vec<String> {
    let mut agent_targets = Vec::new();
    for (_, resource) in t["Resources"].as_mapping().unwrap() {
        let props = &resource["Properties"];
        if let Value::Tagged(p) = &props["Principal"] {
            if str_of(&p.value) == "AgentRuntimeRoleArn" {
                assert_eq!(props["Action"], Value::from("lambda:InvokeFunction"));
                let target = match &props["FunctionName"] {
                    Value::Tagged(f) => str_of(&f.value).to_string(),
                    other => panic!("{other:?}"),
                };
                agent_targets.push(target);
            }
        }
    }
    agent_targets.sort();
    agent_targets
}

/// The output `name` is a deny of `action` on everything for every principal but `role`.
fn assert_deny_output(t: &Value, name: &str, action: impl Into<serde_json::Value>, role: &str) {
    assert_eq!(
        t["Outputs"][name]["Condition"],
        Value::from("Enforcing"),
        "{name}"
    );
    let deny = match &t["Outputs"][name]["Value"] {
        Value::Tagged(sub) => str_of(&sub.value).to_string(),
        other => panic!("{other:?}"),
    };
    let statement: serde_json::Value =
        serde_json::from_str(&deny.replace(&format!("${{{role}.Arn}}"), "arn:role")).unwrap();
    assert_eq!(statement["Effect"], "Deny", "{name}");
    assert_eq!(statement["Action"], action.into(), "{name}");
    assert_eq!(statement["Resource"], "*", "{name}");
    assert_eq!(
        statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], "arn:role",
        "{name}"
    );
}

#[test]
fn the_dashboard_body_is_valid_json_and_plots_every_metric_the_functions_emit() {
    let t = template();
    let body = match &t["Resources"]["Dashboard"]["Properties"]["DashboardBody"] {
        Value::Tagged(sub) => str_of(&sub.value[0]).to_string(),
        other => panic!("DashboardBody should be a !Sub, found {other:?}"),
    };
    // Substitute every ${Name} as CloudFormation would, with a placeholder.
    let mut text = String::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${...}") + start;
        text.push('x');
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON parses");
    assert!(dashboard["widgets"].as_array().unwrap().len() >= 8);
    for metric in [
        "Decisions",
        "LedgerOperations",
        "ReservedMicros",
        "SettledMicros",
        "LateSettlements",
        "MarkSentMissing",
        "Authorizations",
        "SignedPayloadMismatch",
        "OverdraftMicros",
        "ExpiredPending",
        "ExpiredSent",
    ] {
        assert!(
            text.contains(metric),
            "the dashboard does not plot {metric}"
        );
    }
}
