//! The three tables, their key schemas and the sparse open-holds index, defined once. The SAM
//! template is checked against these definitions.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use predebit_core::store::StoreError;

use crate::error::unavailable;

/// The partition key attribute of every table.
pub const PK: &str = "pk";
/// The sort key attribute of the ledger table.
pub const SK: &str = "sk";
/// The sparse index over holds still open (PENDING or SENT), read by `expire`.
pub const OPEN_HOLDS_INDEX: &str = "open-holds";
/// Partition key of the open-holds index: a shard label, set only while a hold is open.
pub const OPEN_SHARD: &str = "openShard";
/// Sort key of the open-holds index: when the open hold expires.
pub const HOLD_EXPIRES_AT: &str = "holdExpiresAt";
/// The ledger table's time-to-live attribute: set on budget counters only (a week after their
/// window ends), never on sessions or holds.
pub const COUNTER_TTL: &str = "ttl";

/// A key attribute and its DynamoDB scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAttr {
    /// Attribute name.
    pub name: &'static str,
    /// "S" or "N".
    pub kind: &'static str,
}

/// A global secondary index definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// Index name.
    pub name: &'static str,
    /// Partition key.
    pub hash: KeyAttr,
    /// Sort key.
    pub range: Option<KeyAttr>,
}

/// A table definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// The logical name, as in the SAM template (`PoliciesTable` is `Policies` + `Table`).
    pub logical: &'static str,
    /// Partition key.
    pub hash: KeyAttr,
    /// Sort key.
    pub range: Option<KeyAttr>,
    /// Global secondary indexes.
    pub indexes: &'static [IndexSpec],
}

const S_PK: KeyAttr = KeyAttr {
    name: PK,
    kind: "S",
};

/// `POLICY#global`, `POLICY#user#<userId>`, `POLICY#agent#<agentId>`.
pub const POLICIES: TableSpec = TableSpec {
    logical: "Policies",
    hash: S_PK,
    range: None,
    indexes: &[],
};
/// `AGENT#<agentId>`, `CONSENT#<userId>#<agentId>`.
pub const REGISTRY: TableSpec = TableSpec {
    logical: "Registry",
    hash: S_PK,
    range: None,
    indexes: &[],
};
/// Sessions and their holds in one partition per session.
pub const LEDGER: TableSpec = TableSpec {
    logical: "Ledger",
    hash: S_PK,
    range: Some(KeyAttr {
        name: SK,
        kind: "S",
    }),
    indexes: &[IndexSpec {
        name: OPEN_HOLDS_INDEX,
        hash: KeyAttr {
            name: OPEN_SHARD,
            kind: "S",
        },
        range: Some(KeyAttr {
            name: HOLD_EXPIRES_AT,
            kind: "N",
        }),
    }],
};

/// Every table, in a fixed order.
pub const ALL: [TableSpec; 3] = [POLICIES, REGISTRY, LEDGER];

/// The deployed table names, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    /// The Policies table.
    pub policies: String,
    /// The Registry table.
    pub registry: String,
    /// The Ledger table.
    pub ledger: String,
}

/// Environment variables naming the tables.
pub const ENV_POLICIES: &str = "PREDEBIT_POLICIES_TABLE";
/// See [`ENV_POLICIES`].
pub const ENV_REGISTRY: &str = "PREDEBIT_REGISTRY_TABLE";
/// See [`ENV_POLICIES`].
pub const ENV_LEDGER: &str = "PREDEBIT_LEDGER_TABLE";

impl TableNames {
    /// `<prefix>-policies`, `<prefix>-registry`, `<prefix>-ledger`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            policies: format!("{prefix}-policies"),
            registry: format!("{prefix}-registry"),
            ledger: format!("{prefix}-ledger"),
        }
    }

    /// Reads the three names from the environment; the error names the missing variable.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("environment variable {name} is not set; set it to the table name")
                })
        };
        Ok(Self {
            policies: var(ENV_POLICIES)?,
            registry: var(ENV_REGISTRY)?,
            ledger: var(ENV_LEDGER)?,
        })
    }

    /// The deployed name of a table definition.
    pub fn name_of(&self, spec: &TableSpec) -> &str {
        match spec.logical {
            "Policies" => &self.policies,
            "Registry" => &self.registry,
            _ => &self.ledger,
        }
    }
}

fn scalar(kind: &str) -> ScalarAttributeType {
    if kind == "N" {
        ScalarAttributeType::N
    } else {
        ScalarAttributeType::S
    }
}

fn key_schema(hash: KeyAttr, range: Option<KeyAttr>) -> Vec<KeySchemaElement> {
    let mut out = vec![KeySchemaElement::builder()
        .attribute_name(hash.name)
        .key_type(KeyType::Hash)
        .build()
        .expect("hash key has name and type")];
    if let Some(r) = range {
        out.push(
            KeySchemaElement::builder()
                .attribute_name(r.name)
                .key_type(KeyType::Range)
                .build()
                .expect("range key has name and type"),
        );
    }
    out
}

/// Creates one table (on-demand) and waits until it is active. An existing table is left alone.
pub async fn create_table(
    client: &Client,
    spec: &TableSpec,
    name: &str,
) -> Result<bool, StoreError> {
    let mut attrs: Vec<KeyAttr> = vec![spec.hash];
    attrs.extend(spec.range);
    for index in spec.indexes {
        attrs.push(index.hash);
        attrs.extend(index.range);
    }
    attrs.dedup_by(|a, b| a.name == b.name);
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(spec.hash, spec.range)));
    for attr in attrs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr.name)
                .attribute_type(scalar(attr.kind))
                .build()
                .expect("attribute has name and type"),
        );
    }
    for index in spec.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.hash, index.range)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index has name and key schema"),
        );
    }
    match req.send().await {
        Ok(_) => Ok(true),
        Err(err) => {
            let exists = err
                .as_service_error()
                .map(|e| e.is_resource_in_use_exception())
                .unwrap_or(false);
            if exists {
                Ok(false)
            } else {
                Err(unavailable(err))
            }
        }
    }
}

/// Creates the three tables; returns the names of those that were created.
pub async fn create_all(client: &Client, names: &TableNames) -> Result<Vec<String>, StoreError> {
    let mut created = Vec::new();
    for spec in ALL {
        let name = names.name_of(&spec);
        if create_table(client, &spec, name).await? {
            created.push(name.to_string());
        }
    }
    Ok(created)
}
