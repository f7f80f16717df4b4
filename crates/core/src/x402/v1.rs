//! x402 v1 `accepts` entries: v1 network names, `maxAmountRequired`, and a per-entry `resource`.

use serde_json::Value;

use super::fields::{
    err, object, optional_object, optional_str, positive_u64, required_address, required_amount,
    required_scheme, required_str,
};
use super::{resource_host, FieldError, Requirement};
use crate::network::v1_network_to_caip2;

/// The refusal of a v1 network name predebit does not know; the name itself is never repeated.
pub(crate) fn unknown_v1_network(prefix: &str, key: &str) -> FieldError {
    err(
        prefix,
        key,
        "is not a known x402 v1 network name (v1 uses names such as \"base\")",
    )
}

/// Parses one v1 `accepts` entry; error paths are relative to the entry.
pub fn parse_entry(entry: &Value) -> Result<Requirement, FieldError> {
    let map = object(entry, "")
        .map_err(|_| FieldError::new("", "an accepts entry must be a JSON object"))?;
    let scheme = required_scheme(map, "")?;
    let name = required_str(map, "", "network")?;
    let network = v1_network_to_caip2(name).ok_or_else(|| unknown_v1_network("", "network"))?;
    let amount = required_amount(map, "", "maxAmountRequired")?;
    let resource = required_str(map, "", "resource")?;
    if resource_host(resource).is_none() {
        return Err(err("", "resource", "must be an http(s) URL with a host"));
    }
    let pay_to = required_address(map, "", "payTo", network)?;
    let asset = required_address(map, "", "asset", network)?;
    let max_timeout_seconds = positive_u64(map, "", "maxTimeoutSeconds")?;
    let description = optional_str(map, "", "description")?;
    let mime_type = optional_str(map, "", "mimeType")?;
    let extra = optional_object(map, "", "extra")?;
    optional_object(map, "", "outputSchema")?;
    Ok(Requirement {
        x402_version: 1,
        scheme: scheme.to_string(),
        network: network.to_string(),
        amount,
        asset: asset.to_string(),
        pay_to: pay_to.to_string(),
        max_timeout_seconds,
        resource: Some(resource.to_string()),
        description: description.map(str::to_string),
        mime_type: mime_type.map(str::to_string),
        extra,
    })
}

/// The v1 wire form of a requirement: v1 field names, the network as CAIP-2.
pub fn to_wire(requirement: &Requirement, entry: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("scheme".into(), requirement.scheme.clone().into());
    out.insert("network".into(), requirement.network.clone().into());
    out.insert(
        "maxAmountRequired".into(),
        requirement.amount.clone().into(),
    );
    if let Some(resource) = &requirement.resource {
        out.insert("resource".into(), resource.clone().into());
    }
    if let Some(description) = &requirement.description {
        out.insert("description".into(), description.clone().into());
    }
    if let Some(mime_type) = &requirement.mime_type {
        out.insert("mimeType".into(), mime_type.clone().into());
    }
    out.insert("payTo".into(), requirement.pay_to.clone().into());
    out.insert(
        "maxTimeoutSeconds".into(),
        requirement.max_timeout_seconds.into(),
    );
    out.insert("asset".into(), requirement.asset.clone().into());
    if let Some(output_schema) = entry.get("outputSchema").filter(|v| v.is_object()) {
        out.insert("outputSchema".into(), output_schema.clone());
    }
    if let Some(extra) = &requirement.extra {
        out.insert("extra".into(), extra.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::testdata::*;
    use serde_json::json;

    #[test]
    fn v1_entry_maps_base_sepolia_to_eip155_84532() {
        // GIVEN a real-format v1 entry on base-sepolia WHEN parsed THEN every field is normalised
        let requirement = parse_entry(&v1_entry()).unwrap();
        assert_eq!(
            requirement,
            Requirement {
                x402_version: 1,
                scheme: "exact".into(),
                network: "eip155:84532".into(),
                amount: "10000".into(),
                asset: USDC_BASE_SEPOLIA.into(),
                pay_to: PAY_TO.into(),
                max_timeout_seconds: 300,
                resource: Some("https://api.example.com/premium-data".into()),
                description: Some("Access to premium market data".into()),
                mime_type: Some("application/json".into()),
                extra: Some(json!({"name": "USDC", "version": "2"})),
            }
        );
    }

    #[test]
    fn v1_entry_maps_base_to_eip155_8453() {
        // GIVEN network "base" with Base USDC WHEN parsed THEN the network is eip155:8453
        let mut entry = v1_entry();
        entry["network"] = json!("base");
        entry["asset"] = json!(USDC_BASE);
        assert_eq!(parse_entry(&entry).unwrap().network, "eip155:8453");
    }

    #[test]
    fn v1_entry_refuses_caip2_network() {
        // GIVEN a v1 entry whose network is already CAIP-2 WHEN parsed THEN refused on network
        let mut entry = v1_entry();
        entry["network"] = json!("eip155:84532");
        assert_eq!(parse_entry(&entry).unwrap_err().field, "network");
    }

    #[test]
    fn v1_entry_refuses_unknown_network_name() {
        // GIVEN an unknown v1 name WHEN parsed THEN refused on network with the name quoted
        let mut entry = v1_entry();
        entry["network"] = json!("base-goerli");
        let e = parse_entry(&entry).unwrap_err();
        assert_eq!(e.field, "network");
        assert_eq!(
            e.problem,
            "is not a known x402 v1 network name (v1 uses names such as \"base\")"
        );
    }

    #[test]
    fn v1_entry_refuses_numeric_amount() {
        // GIVEN maxAmountRequired as a JSON number WHEN parsed THEN refused on that field
        let mut entry = v1_entry();
        entry["maxAmountRequired"] = json!(10000);
        let e = parse_entry(&entry).unwrap_err();
        assert_eq!(e.field, "maxAmountRequired");
        assert!(e.problem.contains("not a JSON number"));
    }

    #[test]
    fn v1_entry_refuses_decimal_amount() {
        // GIVEN a human-unit amount "0.01" WHEN parsed THEN refused on maxAmountRequired
        let mut entry = v1_entry();
        entry["maxAmountRequired"] = json!("0.01");
        assert_eq!(parse_entry(&entry).unwrap_err().field, "maxAmountRequired");
    }

    #[test]
    fn v1_entry_requires_resource_url() {
        // GIVEN entries without resource or with a non-URL resource WHEN parsed THEN refused on resource
        let mut missing = v1_entry();
        missing.as_object_mut().unwrap().remove("resource");
        assert_eq!(parse_entry(&missing).unwrap_err().field, "resource");
        let mut not_url = v1_entry();
        not_url["resource"] = json!("/premium-data");
        assert_eq!(parse_entry(&not_url).unwrap_err().field, "resource");
    }

    #[test]
    fn v1_entry_refuses_symbol_as_asset() {
        // GIVEN asset "USDC" instead of a token address WHEN parsed THEN refused on asset
        let mut entry = v1_entry();
        entry["asset"] = json!("USDC");
        assert_eq!(parse_entry(&entry).unwrap_err().field, "asset");
    }

    #[test]
    fn v1_entry_refuses_bad_checksum_pay_to() {
        // GIVEN a mixed-case payTo with one letter's case flipped WHEN parsed THEN refused on payTo
        let mut entry = v1_entry();
        entry["payTo"] = json!(PAY_TO.replacen('B', "b", 1));
        let e = parse_entry(&entry).unwrap_err();
        assert_eq!(e.field, "payTo");
        assert!(e.problem.contains("EIP-55"), "{}", e.problem);
    }

    #[test]
    fn v1_entry_accepts_lowercase_pay_to() {
        // GIVEN an all-lowercase payTo WHEN parsed THEN accepted as given
        let mut entry = v1_entry();
        entry["payTo"] = json!(PAY_TO.to_ascii_lowercase());
        assert_eq!(
            parse_entry(&entry).unwrap().pay_to,
            PAY_TO.to_ascii_lowercase()
        );
    }

    #[test]
    fn v1_entry_allows_missing_description_and_mime_type() {
        // GIVEN an entry without description or mimeType WHEN parsed THEN they are None
        let mut entry = v1_entry();
        let map = entry.as_object_mut().unwrap();
        map.remove("description");
        map.remove("mimeType");
        let requirement = parse_entry(&entry).unwrap();
        assert_eq!(
            (requirement.description, requirement.mime_type),
            (None, None)
        );
    }

    #[test]
    fn v1_entry_maps_solana_with_base58_addresses() {
        // GIVEN a v1 entry on "solana" WHEN parsed THEN network is the solana mainnet CAIP-2 id
        let mut entry = v1_entry();
        entry["network"] = json!("solana");
        entry["asset"] = json!(USDC_SOLANA);
        entry["payTo"] = json!(SOLANA_PAY_TO);
        let requirement = parse_entry(&entry).unwrap();
        assert_eq!(
            requirement.network,
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
        );
        assert_eq!(requirement.asset, USDC_SOLANA);
    }

    #[test]
    fn v1_entry_refuses_evm_address_on_solana() {
        // GIVEN a solana entry paying an EVM address WHEN parsed THEN refused on payTo
        let mut entry = v1_entry();
        entry["network"] = json!("solana");
        entry["asset"] = json!(USDC_SOLANA);
        assert_eq!(parse_entry(&entry).unwrap_err().field, "payTo");
    }

    #[test]
    fn v1_wire_form_keeps_v1_names_with_caip2_network() {
        // GIVEN a parsed entry WHEN rendered for the wire THEN v1 field names, CAIP-2 network
        let entry = v1_entry();
        let wire = to_wire(&parse_entry(&entry).unwrap(), &entry);
        assert_eq!(wire["network"], "eip155:84532");
        assert_eq!(wire["maxAmountRequired"], "10000");
        assert_eq!(wire["outputSchema"], entry["outputSchema"]);
        assert!(wire.get("amount").is_none());
    }
}
