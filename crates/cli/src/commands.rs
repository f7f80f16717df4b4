//! The CLI's commands. Each returns the process exit code: 0 done, 1 failed, 2 bad input.

use std::io::Read;

use predebit_core::audit_check::audit_session;
use predebit_core::hold::Hold;
use predebit_core::keys::KeyRing;
use predebit_core::ledger::port::read_whole_session;
use predebit_core::ledger::{hold_view, session_view, AllowedOps, Ledger, LedgerConfig};
use predebit_core::money::{format_usd, parse_usd};
use predebit_core::records::{
    AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, SessionRecord,
};
use predebit_core::x402::{decode_wire, WireKind};
use predebit_ledger::LedgerService;
use predebit_store::dynamodb::PolicyScope;
use predebit_store::secrets::{self, KeySource};
use predebit_store::seed::{self, new_session, policy_scope, with_status};
use predebit_store::{tables, AdminError, DynamoStore, TableNames};
use predebit_verify::{now_epoch_seconds, VerifyService};
use rand::RngCore;
use serde_json::{json, Value};

use crate::{
    AgentAction, AuditAction, Cli, Command, ConsentAction, InvokeFunction, PolicyAction, ScopeArgs,
    SecretAction, SessionAction, TablesAction, X402Action,
};

/// Runs one command.
pub async fn run(cli: Cli) -> i32 {
    if let Command::X402 {
        action: X402Action::Decode { header },
    } = &cli.command
    {
        return x402_decode(header.as_deref());
    }
    match run_aws(&cli).await {
        Ok(()) => 0,
        Err(CliError::Input(msg)) => {
            eprintln!("predebit: {msg}");
            2
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("predebit: {msg}");
            1
        }
    }
}

pub(crate) enum CliError {
    Input(String),
    Failed(String),
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => CliError::Input(m),
            other => CliError::Failed(format!(
                "{other}. Check the AWS region, credentials and endpoint (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local), and that `predebit tables create` ran."
            )),
        }
    }
}

pub(crate) fn table_names(cli: &Cli) -> TableNames {
    TableNames::from_env().unwrap_or_else(|_| TableNames::with_prefix(&cli.table_prefix))
}

pub(crate) async fn store(cli: &Cli) -> DynamoStore {
    let config = predebit_store::config::load().await;
    DynamoStore::new(predebit_store::DynamoClient::new(&config), table_names(cli))
}

pub(crate) fn read_input(path: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("cannot read {path}: {e}")))
    }
}

pub(crate) fn print(cli: &Cli, value: Value, text: String) {
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON prints")
        );
    } else {
        println!("{text}");
    }
}

fn scope(args: &ScopeArgs) -> Result<PolicyScope, CliError> {
    Ok(policy_scope(
        &args.scope,
        args.user_id.as_deref(),
        args.agent_id.as_deref(),
    )?)
}

async fn run_aws(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Tables {
            action: TablesAction::Create,
        } => {
            let store = store(cli).await;
            let created = tables::create_all(store.client(), store.tables())
                .await
                .map_err(|e| CliError::from(AdminError::from(e)))?;
            print(
                cli,
                json!({ "created": created }),
                format!("tables created: {}", created.len()),
            );
        }
        Command::Seed { file } => {
            let seed_file = seed::parse(&read_input(file)?)?;
            let report = seed::apply(&store(cli).await, &seed_file).await?;
            print(
                cli,
                json!({"policies": report.policies, "agents": report.agents, "consents": report.consents, "sessions": report.sessions}),
                format!(
                    "seeded {} policies, {} agents, {} consents, {} sessions",
                    report.policies, report.agents, report.consents, report.sessions
                ),
            );
        }
        Command::Policy {
            action: PolicyAction::Put { scope: args, file },
        } => {
            let document = read_input(file)?;
            predebit_core::policy::PolicyDocument::parse(&document).map_err(|e| {
                CliError::Input(format!("the policy is invalid, nothing was stored: {e}"))
            })?;
            let version = store(cli)
                .await
                .put_policy(&scope(args)?, &document)
                .await?;
            print(
                cli,
                json!({ "version": version }),
                format!("policy stored, version {version}"),
            );
        }
        Command::Policy {
            action: PolicyAction::Get { scope: args },
        } => match store(cli).await.get_policy(&scope(args)?).await? {
            Some(p) => print(
                cli,
                json!({"version": p.version, "document": serde_json::from_str::<Value>(&p.document).unwrap_or(Value::String(p.document.to_string()))}),
                format!("version {}\n{}", p.version, p.document),
            ),
            None => return Err(CliError::Failed("no policy at that scope".into())),
        },
        Command::Policy {
            action: PolicyAction::Delete { scope: args },
        } => {
            store(cli).await.delete_policy(&scope(args)?).await?;
            print(
                cli,
                json!({ "deleted": true }),
                "policy deleted; the scope now restricts nothing (versions never repeat: a later put takes a new one)".to_string(),
            );
        }
        Command::Agent { action } => agent(cli, action).await?,
        Command::Consent { action } => consent(cli, action).await?,
        Command::Session { action } => session(cli, action).await?,
        Command::Pool { action } => crate::pools::pool(cli, store(cli).await, action).await?,
        Command::Holds {
            action: crate::HoldsAction::InDoubt { older_than },
        } => crate::in_doubt::in_doubt(cli, store(cli).await, older_than).await?,
        Command::Secret {
            action: SecretAction::Create { kid },
        } => {
            let mut signing = [0u8; 32];
            let mut pseudonym = [0u8; 32];
            rand::rng().fill_bytes(&mut signing);
            rand::rng().fill_bytes(&mut pseudonym);
            let secret = KeyRing::new_secret_json(kid, &signing, &pseudonym);
            KeyRing::from_secret_json(&secret).map_err(|e| CliError::Input(e.to_string()))?;
            let config = predebit_store::config::load().await;
            secrets::put(
                &predebit_store::SecretsClient::new(&config),
                &cli.secret_id,
                &secret,
            )
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
            print(
                cli,
                json!({"secretId": cli.secret_id, "activeKid": kid}),
                format!("secret {} stored (active kid {kid})", cli.secret_id),
            );
        }
        Command::Invoke {
            function: InvokeFunction::Verify { files, now },
        } => invoke_verify(cli, files, *now).await?,
        Command::Invoke {
            function: InvokeFunction::Ledger { files, ops, now },
        } => invoke_ledger(cli, files, ops, *now).await?,
        Command::Invoke {
            function:
                InvokeFunction::Authorize {
                    files,
                    payment_manager_arn,
                    now,
                },
        } => crate::authorize::invoke(cli, files, payment_manager_arn, *now).await?,
        Command::Audit {
            action: AuditAction::Check { session },
        } => audit_check(cli, session).await?,
        Command::X402 { .. } => unreachable!("handled before AWS set-up"),
    }
    Ok(())
}

async fn agent(cli: &Cli, action: &AgentAction) -> Result<(), CliError> {
    let store = store(cli).await;
    let (agent_id, status) = match action {
        AgentAction::Register {
            agent_id,
            user_id,
            tools,
        } => {
            let record = AgentRecord {
                agent_id: agent_id.clone(),
                user_id: user_id.clone(),
                status: AgentStatus::Active,
                allowed_tools: (!tools.is_empty()).then(|| tools.clone()),
            };
            store.put_agent(&record).await?;
            print(
                cli,
                json!({"agentId": agent_id, "status": "ACTIVE"}),
                format!("agent {agent_id} registered"),
            );
            return Ok(());
        }
        AgentAction::Suspend { agent_id } => (agent_id, AgentStatus::Suspended),
        AgentAction::Revoke { agent_id } => (agent_id, AgentStatus::Revoked),
        AgentAction::Activate { agent_id } => (agent_id, AgentStatus::Active),
    };
    let existing = store.get_agent(agent_id).await?.ok_or_else(|| {
        CliError::Input(format!(
            "agent {agent_id} is not registered; register it first"
        ))
    })?;
    if existing.status == AgentStatus::Revoked && status != AgentStatus::Revoked {
        return Err(CliError::Input(format!(
            "agent {agent_id} is revoked; register a new agent id"
        )));
    }
    store.put_agent(&with_status(existing, status)).await?;
    print(
        cli,
        json!({"agentId": agent_id, "status": status}),
        format!("agent {agent_id} is now {status:?}"),
    );
    Ok(())
}

async fn consent(cli: &Cli, action: &ConsentAction) -> Result<(), CliError> {
    let store = store(cli).await;
    let (user_id, agent_id, record) = match action {
        ConsentAction::Grant {
            user_id,
            agent_id,
            expires_at,
            days,
        } => {
            let expires_at = expires_at
                .or(days.map(|d| now_epoch_seconds().saturating_add(d.saturating_mul(86_400))));
            (
                user_id,
                agent_id,
                ConsentRecord {
                    status: ConsentStatus::Granted,
                    expires_at,
                },
            )
        }
        ConsentAction::Revoke { user_id, agent_id } => (
            user_id,
            agent_id,
            ConsentRecord {
                status: ConsentStatus::Revoked,
                expires_at: None,
            },
        ),
    };
    store.put_consent(user_id, agent_id, &record).await?;
    print(
        cli,
        json!({"agentId": agent_id, "status": record.status, "expiresAt": record.expires_at}),
        format!("consent for agent {agent_id}: {:?}", record.status),
    );
    Ok(())
}

async fn session(cli: &Cli, action: &SessionAction) -> Result<(), CliError> {
    let store = store(cli).await;
    match action {
        SessionAction::Open {
            session_id,
            user_id,
            limit,
            expires_at,
            expiry_minutes,
            payment_manager_arn: Some(manager),
            client_token,
            pool,
        } if !manager.trim().is_empty() => {
            open_against_agentcore(
                cli,
                store,
                manager,
                OpenArgs {
                    session_id: session_id.as_deref(),
                    user_id,
                    limit,
                    expires_at: *expires_at,
                    expiry_minutes: *expiry_minutes,
                    client_token: client_token.as_deref(),
                    pool: pool.as_deref(),
                },
            )
            .await?;
        }
        SessionAction::Open {
            session_id: Some(session_id),
            user_id,
            limit,
            expires_at,
            expiry_minutes,
            pool: Some(pool),
            ..
        } => {
            crate::pools::open_on_pool(
                cli,
                store,
                json!({"version": "1", "op": "openSession", "paymentSessionId": session_id,
                    "userId": user_id, "limit": limit, "pool": pool,
                    "expiresAt": expires_at, "expiryMinutes": expiry_minutes}),
            )
            .await?;
        }
        SessionAction::Open {
            session_id,
            user_id,
            limit,
            expires_at,
            expiry_minutes,
            ..
        } => {
            let session_id = session_id.as_deref().ok_or_else(|| {
                CliError::Input(
                    "--session-id is required without --payment-manager-arn (or PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN)".into(),
                )
            })?;
            let limit_micros =
                parse_usd(limit).map_err(|e| CliError::Input(format!("--limit: {e}")))?;
            let expires_at = match (expires_at, expiry_minutes) {
                (Some(t), None) => *t,
                (None, Some(m)) if (15..=480).contains(m) => {
                    now_epoch_seconds().saturating_add(m * 60)
                }
                (None, Some(_)) => {
                    return Err(CliError::Input("--expiry-minutes must be 15 to 480".into()))
                }
                _ => {
                    return Err(CliError::Input(
                        "give --expires-at or --expiry-minutes".into(),
                    ))
                }
            };
            let record = new_session(session_id, user_id, limit_micros, expires_at, None);
            let created = store.open_session(&record).await?;
            print(
                cli,
                json!({"paymentSessionId": session_id, "created": created, "limit": format_usd(limit_micros), "expiresAt": expires_at}),
                format!(
                    "session {session_id} {} (limit {})",
                    if created { "opened" } else { "already open" },
                    format_usd(limit_micros)
                ),
            );
        }
        SessionAction::Show { session_id } => {
            let whole = read_whole_session(&store, session_id)
                .await
                .map_err(|e| CliError::Failed(format!("{e}")))?
                .ok_or_else(|| CliError::Failed(format!("session {session_id} not found")))?;
            let mut value = session_view(&whole.session);
            value["holds"] = Value::Array(whole.holds.iter().map(hold_view).collect());
            print(cli, value, session_text(&whole.session, &whole.holds));
        }
        SessionAction::Close { session_id, reason } => {
            let event = json!({"version": "1", "op": "closeSession", "paymentSessionId": session_id, "reason": reason});
            let response = admin_op(store, &event).await;
            if response["ok"] != true {
                return Err(CliError::Failed(format!(
                    "session {session_id} was not closed: {} {}",
                    response["reasonCode"].as_str().unwrap_or("?"),
                    response["message"].as_str().unwrap_or("")
                )));
            }
            print(
                cli,
                response.clone(),
                format!(
                    "session {session_id} closed; new reserves are refused (SESSION_CLOSED)\n{}",
                    balances_line(&response["session"])
                ),
            );
        }
    }
    Ok(())
}

async fn invoke_verify(cli: &Cli, files: &[String], now: Option<u64>) -> Result<(), CliError> {
    let config = predebit_store::config::load().await;
    let store = DynamoStore::new(predebit_store::DynamoClient::new(&config), table_names(cli));
    let keys = KeySource::from_secrets_manager(
        predebit_store::SecretsClient::new(&config),
        cli.secret_id.clone(),
    )
    .await
    .map_err(|e| CliError::Failed(format!("{e}. Create it with `predebit secret create`.")))?;
    let service = VerifyService::new(store, keys)
        .with_audit_sink(Box::new(|line| eprintln!("{line}")))
        .with_metrics_sink(Box::new(|_| {}));
    let table = files.len() > 1 && !cli.json;
    if table {
        println!("{:<44} {:<8} {:<28} AUDIT", "EVENT", "DECISION", "REASON");
    }
    let mut responses = Vec::new();
    for file in files {
        let text = read_input(file)?;
        // The Lambda's own entry: a file that is not JSON is still decided (NO, INVALID_REQUEST).
        let verification_id = format!("local-{:016x}", rand::rng().next_u64());
        let response = service
            .handle_raw(
                text.as_bytes(),
                &verification_id,
                now.unwrap_or_else(now_epoch_seconds),
            )
            .await;
        if table {
            let name = std::path::Path::new(file)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(file);
            println!(
                "{:<44} {:<8} {:<28} {}",
                name,
                response["decision"].as_str().unwrap_or("?"),
                response["reasonCode"].as_str().unwrap_or("?"),
                &response["auditHash"].as_str().unwrap_or("")
                    [..12.min(response["auditHash"].as_str().unwrap_or("").len())]
            );
        }
        responses.push(response);
    }
    if !table {
        print_responses(responses);
    }
    Ok(())
}

/// Prints the responses as JSON: one object for one event, an array for several.
pub(crate) fn print_responses(mut responses: Vec<Value>) {
    let out = if responses.len() == 1 {
        responses.remove(0)
    } else {
        Value::Array(responses)
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("JSON prints")
    );
}

/// The balances of a session view, on one line.
fn balances_line(view: &Value) -> String {
    let field = |name: &str| view[name].as_str().unwrap_or("?").to_string();
    format!(
        "  limit {}  reserved {}  settled {}  available {}  overdraft {}",
        field("limit"),
        field("reserved"),
        field("settled"),
        field("available"),
        field("overdraft")
    )
}

/// A session, its balances and one line per hold.
/// `predebit session open`'s fields for the ledger's openSession.
struct OpenArgs<'a> {
    session_id: Option<&'a str>,
    user_id: &'a str,
    limit: &'a str,
    expires_at: Option<u64>,
    expiry_minutes: Option<u64>,
    client_token: Option<&'a str>,
    pool: Option<&'a str>,
}

/// openSession through the admin ledger with AgentCore's payment sessions, as the admin
/// function runs it.
async fn open_against_agentcore(
    cli: &Cli,
    store: DynamoStore,
    manager: &str,
    args: OpenArgs<'_>,
) -> Result<(), CliError> {
    let mut event = json!({"version": "1", "op": "openSession", "userId": args.user_id,
        "limit": args.limit});
    if let Some(t) = args.expires_at {
        event["expiresAt"] = json!(t);
    }
    if let Some(m) = args.expiry_minutes {
        event["expiryMinutes"] = json!(m);
    }
    if let Some(pool) = args.pool {
        event["pool"] = json!(pool);
    }
    let client_token = match (args.session_id, args.client_token) {
        (Some(id), _) => {
            event["paymentSessionId"] = json!(id);
            None
        }
        (None, Some(token)) => Some(token.to_string()),
        (None, None) => {
            let mut bits = [0u8; 16];
            rand::rng().fill_bytes(&mut bits);
            let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("predebit-cli-{hex}"))
        }
    };
    if let Some(token) = &client_token {
        event["clientToken"] = json!(token);
    }
    let sdk = predebit_store::config::load().await;
    let sessions = predebit_agentcore::AgentCorePaymentSessions::new(
        aws_sdk_bedrockagentcore::Client::new(&sdk),
        manager.to_string(),
    );
    let config = LedgerConfig {
        allowed: AllowedOps::parse("admin").expect("admin is an ops setting"),
        ..LedgerConfig::default()
    };
    let ledger = Ledger::new(store, config).with_payment_sessions(Some(sessions));
    // openSession uses no key: a throwaway ring, as for close.
    let response = ledger
        .handle(
            &event,
            &throwaway_keys(),
            now_epoch_seconds(),
            &predebit_ledger::fresh_request_id(),
        )
        .await;
    if response["ok"] != true {
        let retry = match (&client_token, response["reasonCode"].as_str()) {
            (Some(token), Some("AGENTCORE_UNAVAILABLE" | "STORE_UNAVAILABLE")) => {
                format!("; run it again with --client-token {token}")
            }
            _ => String::new(),
        };
        return Err(CliError::Failed(format!(
            "the session was not opened: {} {}{retry}",
            response["reasonCode"].as_str().unwrap_or("?"),
            response["message"].as_str().unwrap_or(""),
        )));
    }
    let mut value = response.clone();
    if let Some(token) = &client_token {
        value["clientToken"] = json!(token);
    }
    let id = response["session"]["paymentSessionId"]
        .as_str()
        .unwrap_or("?");
    let verb = match (response["agentCore"].as_str(), response["replayed"] == true) {
        (_, true) => "already open",
        (Some("created"), false) => "created at AgentCore and opened",
        _ => "opened against AgentCore's",
    };
    print(
        cli,
        value,
        format!(
            "session {id} {verb} (limit {}, expires at {})",
            response["session"]["limit"].as_str().unwrap_or("?"),
            response["session"]["expiresAt"]
        ),
    );
    Ok(())
}

/// A key ring for ops that use no key (openSession, closeSession): random, never stored.
/// One admin ledger op (openSession, closeSession), as the admin function runs it. These ops
/// use no key: a throwaway ring keeps the kill switch independent of Secrets Manager.
pub(crate) async fn admin_op(store: DynamoStore, event: &Value) -> Value {
    let config = LedgerConfig {
        allowed: AllowedOps::parse("admin").expect("admin is an ops setting"),
        ..LedgerConfig::default()
    };
    Ledger::new(store, config)
        .handle(
            event,
            &throwaway_keys(),
            now_epoch_seconds(),
            &predebit_ledger::fresh_request_id(),
        )
        .await
}

fn throwaway_keys() -> KeyRing {
    let mut throwaway = [0u8; 32];
    rand::rng().fill_bytes(&mut throwaway);
    KeyRing::from_secret_json(&KeyRing::new_secret_json("unused", &throwaway, &throwaway))
        .expect("a generated secret parses")
}

fn session_text(session: &SessionRecord, holds: &[Hold]) -> String {
    let mut out = format!(
        "session {} {} expires {}\n{}\n  holds: {}",
        session.payment_session_id,
        serde_json::to_value(session.status)
            .expect("status serializes")
            .as_str()
            .unwrap_or("?"),
        session.expires_at,
        balances_line(&session_view(session)),
        holds.len()
    );
    for h in holds {
        out.push_str(&format!(
            "\n    {}  {:<7} {:>10}  expires {}{}",
            h.payment_id,
            h.state.as_str(),
            format_usd(h.amount_micros),
            h.hold_expires_at,
            if h.late { "  late" } else { "" }
        ));
    }
    out
}

pub(crate) async fn ledger_keys(
    cli: &Cli,
    config: &aws_config::SdkConfig,
) -> Result<KeySource, CliError> {
    KeySource::from_secrets_manager(
        predebit_store::SecretsClient::new(config),
        cli.secret_id.clone(),
    )
    .await
    .map_err(|e| CliError::Failed(format!("{e}. Create it with `predebit secret create`.")))
}

async fn invoke_ledger(
    cli: &Cli,
    files: &[String],
    ops: &str,
    now: Option<u64>,
) -> Result<(), CliError> {
    let allowed = AllowedOps::parse(ops).map_err(|e| CliError::Input(format!("--ops: {e}")))?;
    let config = predebit_store::config::load().await;
    let store = DynamoStore::new(predebit_store::DynamoClient::new(&config), table_names(cli));
    let keys = ledger_keys(cli, &config).await?;
    let service = LedgerService::new(
        store,
        LedgerConfig {
            allowed,
            ..LedgerConfig::default()
        },
        keys,
    )
    // Metric lines are for CloudWatch; the CLI prints responses only.
    .with_metrics_sink(Box::new(|_| {}));
    let mut responses = Vec::new();
    for file in files {
        let text = read_input(file)?;
        // The Lambda's own entry: a file that is not JSON is still answered (INVALID_REQUEST).
        let response = service
            .handle_raw(
                text.as_bytes(),
                &predebit_ledger::fresh_request_id(),
                now.unwrap_or_else(now_epoch_seconds),
            )
            .await;
        responses.push(response);
    }
    print_responses(responses);
    Ok(())
}

async fn audit_check(cli: &Cli, session_id: &str) -> Result<(), CliError> {
    let config = predebit_store::config::load().await;
    let store = DynamoStore::new(predebit_store::DynamoClient::new(&config), table_names(cli));
    let keys = ledger_keys(cli, &config).await?.current().await;
    let whole = read_whole_session(&store, session_id)
        .await
        .map_err(|e| CliError::Failed(format!("{e}")))?
        .ok_or_else(|| CliError::Failed(format!("session {session_id} not found")))?;
    // Holds come a page at a time; a write between pages would show as a disagreement that
    // is not one, so the audit is only judged on a walk that saw the session unchanged.
    if whole.session_changed {
        return Err(CliError::Failed(format!(
            "session {session_id} changed while its {} pages of holds were read; run the audit again",
            whole.pages
        )));
    }
    let (session, holds) = (whole.session, whole.holds);
    let problems = audit_session(&session, &holds, &keys);
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "paymentSessionId": session_id, "holds": holds.len(), "ok": problems.is_empty(), "problems": problems,
            }))
            .expect("JSON prints")
        );
    } else if problems.is_empty() {
        println!(
            "session {session_id}: {} holds, every MAC valid, balances agree with the holds",
            holds.len()
        );
    } else {
        for line in &problems {
            println!("{line}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the audit of session {session_id} found {} disagreement(s)",
            problems.len()
        )))
    }
}

fn x402_decode(header: Option<&str>) -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("predebit: cannot read standard input: {e}");
        return 2;
    }
    match decode_to_json(header, &input) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(line) => {
            eprintln!("predebit: {line}");
            2
        }
    }
}

/// Decodes one wire value into pretty JSON, or one line naming the problem.
fn decode_to_json(header: Option<&str>, input: &str) -> Result<String, String> {
    let kind = match header {
        None => None,
        Some(name) => Some(WireKind::from_header_name(name).ok_or_else(|| {
            "--header must be PAYMENT-REQUIRED, X-PAYMENT, PAYMENT-SIGNATURE, X-PAYMENT-RESPONSE or PAYMENT-RESPONSE".to_string()
        })?),
    };
    let value = decode_wire(kind, input.trim()).map_err(|e| e.to_string().replace('\n', " "))?;
    Ok(serde_json::to_string_pretty(&value).expect("JSON prints"))
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::decode_to_json;

    const V1_BODY: &str = r#"{"x402Version":1,"accepts":[{"scheme":"exact","network":"base","maxAmountRequired":"10000","resource":"https://api.example/x","description":"d","mimeType":"application/json","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}]}"#;

    #[test]
    fn a_v1_body_decodes_with_the_network_as_caip2() {
        let out: serde_json::Value =
            serde_json::from_str(&decode_to_json(None, V1_BODY).unwrap()).unwrap();
        assert_eq!(out["accepts"][0]["network"], "eip155:8453");
        assert_eq!(out["accepts"][0]["maxAmountRequired"], "10000");
    }

    #[test]
    fn a_v2_payment_required_header_decodes() {
        let body = r#"{"x402Version":2,"resource":{"url":"https://api.example/x"},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60}]}"#;
        let header = base64::engine::general_purpose::STANDARD.encode(body);
        let out = decode_to_json(Some("payment-required"), &header).unwrap();
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["accepts"][0]["amount"], "10000");
    }

    #[test]
    fn a_failed_settlement_decodes_with_every_field() {
        // GIVEN a failed PAYMENT-RESPONSE with the reason, the message and extensions
        let response = serde_json::json!({
            "success": false,
            "errorReason": "insufficient_funds",
            "errorMessage": "the payer's balance is lower than the value",
            "transaction": "",
            "network": "eip155:84532",
            "extensions": {"payment-identifier": {"id": "pay_1"}}
        });
        let header = base64::engine::general_purpose::STANDARD.encode(response.to_string());
        // WHEN decoded
        let out = decode_to_json(Some("PAYMENT-RESPONSE"), &header).unwrap();
        // THEN every field comes back
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out, response);
    }

    #[test]
    fn invalid_input_is_one_line_naming_the_problem() {
        let err = decode_to_json(Some("PAYMENT-REQUIRED"), "%%% not base64").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(!err.is_empty());
        let err = decode_to_json(Some("X-NOPE"), "x").unwrap_err();
        assert!(err.contains("--header"), "{err}");
    }
}
