//! `predebit`: the operator CLI. Tables, seed data, policies, agents, consents, sessions, the
//! keys secret, local invocation of the functions, the ledger audit, and x402 decoding.

mod authorize;
mod commands;
mod in_doubt;
mod pools;

use clap::{Parser, Subcommand};

/// predebit operator CLI. AWS credentials, region and endpoints come from the standard AWS
/// configuration (for DynamoDB Local: AWS_ENDPOINT_URL_DYNAMODB).
#[derive(Parser, Debug)]
#[command(name = "predebit", version, about)]
pub struct Cli {
    /// Table name prefix: <prefix>-policies, <prefix>-registry, <prefix>-ledger. The variables
    /// PREDEBIT_POLICIES_TABLE, PREDEBIT_REGISTRY_TABLE and PREDEBIT_LEDGER_TABLE override it.
    #[arg(
        long,
        env = "PREDEBIT_TABLE_PREFIX",
        default_value = "predebit",
        global = true
    )]
    pub table_prefix: String,
    /// The keys secret (name or ARN).
    #[arg(
        long,
        env = "PREDEBIT_KEYS_SECRET_ID",
        default_value = "predebit/keys",
        global = true
    )]
    pub secret_id: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the three tables (idempotent).
    Tables {
        #[command(subcommand)]
        action: TablesAction,
    },
    /// Apply a seed file: policies, agents, consents, sessions.
    Seed {
        /// The seed JSON file (see infra/seed/demo.json).
        file: String,
    },
    /// Put or read a policy.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Register, suspend, revoke or reactivate an agent.
    Agent {
        #[command(subcommand)]
        action: AgentAction,
    },
    /// Grant or revoke a user's consent for an agent.
    Consent {
        #[command(subcommand)]
        action: ConsentAction,
    },
    /// Open or show a payment session.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// The holds an operator watches: SENT holds whose settlement is still unknown.
    Holds {
        #[command(subcommand)]
        action: HoldsAction,
    },
    /// Create or show a user's funding pool (sessions opened with --pool draw their limit from it).
    Pool {
        #[command(subcommand)]
        action: PoolAction,
    },
    /// Create or replace the keys secret with freshly generated keys.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Run a function's handler in-process against the configured AWS endpoints.
    Invoke {
        #[command(subcommand)]
        function: InvokeFunction,
    },
    /// Check the ledger against itself.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// x402 wire formats.
    X402 {
        #[command(subcommand)]
        action: X402Action,
    },
}

#[derive(Subcommand, Debug)]
pub enum TablesAction {
    /// Create the tables; existing ones are left alone.
    Create,
}

#[derive(clap::Args, Debug)]
pub struct ScopeArgs {
    /// global, user or agent.
    #[arg(long)]
    pub scope: String,
    /// For --scope user.
    #[arg(long)]
    pub user_id: Option<String>,
    /// For --scope agent.
    #[arg(long)]
    pub agent_id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PolicyAction {
    /// Store a policy document (its version increments).
    Put {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The policy JSON file, or - for standard input.
        file: String,
    },
    /// Print a policy and its version.
    Get {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Delete a policy: the scope then restricts nothing. A later put takes a new version.
    Delete {
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentAction {
    /// Register (or replace) an agent as ACTIVE.
    Register {
        /// The agent's id.
        #[arg(long)]
        agent_id: String,
        /// The wallet owner it acts for.
        #[arg(long)]
        user_id: String,
        /// A tool that may pay (repeat); omit to allow any tool.
        #[arg(long = "tool")]
        tools: Vec<String>,
    },
    /// Suspend an agent.
    Suspend {
        /// The agent's id.
        agent_id: String,
    },
    /// Revoke an agent for good.
    Revoke {
        /// The agent's id.
        agent_id: String,
    },
    /// Reactivate a suspended agent.
    Activate {
        /// The agent's id.
        agent_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsentAction {
    /// Grant consent.
    Grant {
        /// The wallet owner.
        #[arg(long)]
        user_id: String,
        /// The agent.
        #[arg(long)]
        agent_id: String,
        /// Expiry in epoch seconds (exclusive).
        #[arg(long, conflicts_with = "days")]
        expires_at: Option<u64>,
        /// Expiry in days from now.
        #[arg(long)]
        days: Option<u64>,
    },
    /// Revoke consent.
    Revoke {
        /// The wallet owner.
        #[arg(long)]
        user_id: String,
        /// The agent.
        #[arg(long)]
        agent_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionAction {
    /// Open a session with a limit no larger than AgentCore's maxSpendAmount. With a payment
    /// manager, through the ledger's openSession: without --session-id it creates the AgentCore
    /// session (CreatePaymentSession, maxSpendAmount = the limit); with one it reads it
    /// (GetPaymentSession) and refuses a limit or expiry beyond AgentCore's. Without a payment
    /// manager it writes the session as given.
    Open {
        /// The AgentCore payment session id (required without a payment manager).
        #[arg(long)]
        session_id: Option<String>,
        /// The wallet owner.
        #[arg(long)]
        user_id: String,
        /// USD, e.g. 25.00.
        #[arg(long)]
        limit: String,
        /// Expiry in epoch seconds (exclusive).
        #[arg(long, conflicts_with = "expiry_minutes")]
        expires_at: Option<u64>,
        /// Expiry in minutes (15-480, as AgentCore sessions): from now without a payment
        /// manager, from the AgentCore session's creation with one.
        #[arg(long)]
        expiry_minutes: Option<u64>,
        /// The AgentCore payment manager whose sessions to create and read.
        #[arg(long, env = "PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN")]
        payment_manager_arn: Option<String>,
        /// CreatePaymentSession's idempotency key (33-256 letters, digits or '-'): the same token
        /// again returns the same AgentCore session. Generated and printed when absent.
        #[arg(long, requires = "payment_manager_arn", conflicts_with = "session_id")]
        client_token: Option<String>,
        /// Draw the limit from this funding pool of the user (closing gives back what is unspent).
        #[arg(long)]
        pool: Option<String>,
    },
    /// Show a session's balances and all its holds (read a page of 100 at a time).
    Show {
        /// The AgentCore payment session id.
        session_id: String,
    },
    /// Close a session (the kill switch), through the ledger's closeSession.
    Close {
        /// The AgentCore payment session id.
        #[arg(long)]
        session_id: String,
        /// Why, kept on the session (at most 256 characters).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum HoldsAction {
    /// SENT holds marked sent longer ago than --older-than, oldest first, with what is known of
    /// each: when it was sent, until when its authorization can settle, failed settlement
    /// reports, a pending settlement's transaction.
    InDoubt {
        /// How long ago at least: seconds, or with a unit (90s, 10m, 2h, 1d). Default 10m.
        #[arg(long, default_value = "10m")]
        older_than: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PoolAction {
    /// Create a pool with an amount (a replay with the same amount is accepted).
    Create {
        /// The owner.
        #[arg(long)]
        user_id: String,
        /// The pool's name (unique per user).
        #[arg(long)]
        pool_id: String,
        /// USD, e.g. 400.00.
        #[arg(long)]
        amount: String,
    },
    /// Show a pool: funded, available, drawn by sessions, returned by them.
    Show {
        /// The owner.
        #[arg(long)]
        user_id: String,
        /// The pool's name.
        #[arg(long)]
        pool_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Recompute every hold's MAC and re-add the session from its holds; exit 1 on any mismatch.
    Check {
        /// The AgentCore payment session id.
        #[arg(long)]
        session: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretAction {
    /// Generate new keys and store them as the secret (creates or replaces it).
    Create {
        /// The key id for the new signing key.
        #[arg(long, default_value = "k1")]
        kid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum InvokeFunction {
    /// Run the verify handler on one or more event files and print the responses.
    Verify {
        /// Event JSON files.
        #[arg(required = true)]
        files: Vec<String>,
        /// The clock, in epoch seconds; default: now.
        #[arg(long)]
        now: Option<u64>,
    },
    /// Run the ledger handler on one or more event files, in order, and print the responses.
    Ledger {
        /// Event JSON files.
        #[arg(required = true)]
        files: Vec<String>,
        /// The ops this invocation serves: agent, admin, schedule, all, or op names.
        #[arg(long, default_value = "all")]
        ops: String,
        /// The clock, in epoch seconds (e.g. a later time for `expire`); default: now.
        #[arg(long)]
        now: Option<u64>,
    },
    /// Run the authorize handler (enforcing mode) on one or more event files, in order: it
    /// signs through AgentCore Payments (AWS_ENDPOINT_URL_BEDROCK_AGENTCORE for the local
    /// service). Prints the responses; with several files a table that shows each header's name
    /// and size, never its value.
    Authorize {
        /// Event JSON files.
        #[arg(required = true)]
        files: Vec<String>,
        /// The AgentCore payment manager that signs.
        #[arg(long, env = "PREDEBIT_PAYMENT_MANAGER_ARN")]
        payment_manager_arn: String,
        /// The clock, in epoch seconds; default: now.
        #[arg(long)]
        now: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum X402Action {
    /// Decode one wire value read from standard input and print normalised JSON.
    Decode {
        /// PAYMENT-REQUIRED, X-PAYMENT, PAYMENT-SIGNATURE, X-PAYMENT-RESPONSE or PAYMENT-RESPONSE;
        /// omit for a 402 body or to detect the kind.
        #[arg(long)]
        header: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PREDEBIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let code = runtime.block_on(commands::run(cli));
    std::process::exit(code);
}
