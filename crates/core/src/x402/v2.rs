//! x402 v2 `accepts` entries: CAIP-2 networks, `amount`, and the resource held at the top level.

use serde_json::Value;

use super::fields::{
    err, object, optional_object, optional_str, positive_u64, required_address, required_amount,
    required_scheme, required_str,
};
use super::{FieldError, Requirement};
use crate::network::validate_caip2;

/// Parses one v2 `accepts` entry; `resource` is the top-level `resource.url`, if known.
pub fn parse_entry(entry: &Value, resource: Option<&str>) -> Result<Requirement, FieldError> {
    let map = object(entry, "")
        .map_err(|_| FieldError::new("", "an accepts entry must be a JSON object"))?;
    let scheme = required_scheme(map, "")?;
    let network = required_str(map, "", "network")?;
    validate_caip2(network).map_err(|e| err("", "network", e.to_string()))?;
    let amount = required_amount(map, "", "amount")?;
    let asset = required_address(map, "", "asset", network)?;
    let pay_to = required_address(map, "", "payTo", network)?;
    let max_timeout_seconds = positive_u64(map, "", "maxTimeoutSeconds")?;
    // v2 moved these to the top-level resource; some servers still repeat them per entry.
    let description = optional_str(map, "", "description")?;
    let mime_type = optional_str(map, "", "mimeType")?;
    let extra = optional_object(map, "", "extra")?;
    Ok(Requirement {
        x402_version: 2,
        scheme: scheme.to_string(),
        network: network.to_string(),
        amount,
        asset: asset.to_string(),
        pay_to: pay_to.to_string(),
        max_timeout_seconds,
        resource: resource.map(str::to_string),
        description: description.map(str::to_string),
        mime_type: mime_type.map(str::to_string),
        extra,
    })
}

/// The v2 wire form of a requirement: v2 field names (`amount`), no per-entry resource.
pub fn to_wire(requirement: &Requirement) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("scheme".into(), requirement.scheme.clone().into());
    out.insert("network".into(), requirement.network.clone().into());
    out.insert("amount".into(), requirement.amount.clone().into());
    out.insert("asset".into(), requirement.asset.clone().into());
    out.insert("payTo".into(), requirement.pay_to.clone().into());
    out.insert(
        "maxTimeoutSeconds".into(),
        requirement.max_timeout_seconds.into(),
    );
    if let Some(description) = &requirement.description {
        out.insert("description".into(), description.clone().into());
    }
    if let Some(mime_type) = &requirement.mime_type {
        out.insert("mimeType".into(), mime_type.clone().into());
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

    const URL: &str = "https://api.example.com/premium-data";

    #[test]
    fn v2_entry_parses_with_top_level_resource() {
        // GIVEN a real-format v2 entry and the resource URL WHEN parsed THEN every field is kept
        let requirement = parse_entry(&v2_entry(), Some(URL)).unwrap();
        assert_eq!(
            requirement,
            Requirement {
                x402_version: 2,
                scheme: "exact".into(),
                network: "eip155:84532".into(),
                amount: "10000".into(),
                asset: USDC_BASE_SEPOLIA.into(),
                pay_to: PAY_TO.into(),
                max_timeout_seconds: 60,
                resource: Some(URL.into()),
                description: None,
                mime_type: None,
                extra: Some(json!({"name": "USDC", "version": "2"})),
            }
        );
    }

    #[test]
    fn v2_entry_without_resource_has_none() {
        // GIVEN no resource from the caller WHEN parsed THEN resource is None
        assert_eq!(parse_entry(&v2_entry(), None).unwrap().resource, None);
    }

    #[test]
    fn v2_entry_refuses_v1_network_name() {
        // GIVEN network "base-sepolia" in a v2 entry WHEN parsed THEN refused on network
        let mut entry = v2_entry();
        entry["network"] = json!("base-sepolia");
        let e = parse_entry(&entry, None).unwrap_err();
        assert_eq!(e.field, "network");
        assert!(e.problem.contains("CAIP-2"), "{}", e.problem);
    }

    #[test]
    fn v2_entry_refuses_unknown_namespace() {
        // GIVEN a CAIP-2 id in a namespace predebit has no rules for WHEN parsed THEN refused
        let mut entry = v2_entry();
        entry["network"] = json!("cosmos:cosmoshub-4");
        assert_eq!(parse_entry(&entry, None).unwrap_err().field, "network");
    }

    #[test]
    fn v2_entry_refuses_missing_amount() {
        // GIVEN an entry carrying only v1's maxAmountRequired WHEN parsed as v2 THEN amount is required
        let mut entry = v2_entry();
        let map = entry.as_object_mut().unwrap();
        let amount = map.remove("amount").unwrap();
        map.insert("maxAmountRequired".into(), amount);
        let e = parse_entry(&entry, None).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("amount", "is required")
        );
    }

    #[test]
    fn v2_entry_refuses_empty_pay_to_and_asset() {
        // GIVEN empty payTo or asset WHEN parsed THEN refused naming each
        for key in ["payTo", "asset"] {
            let mut entry = v2_entry();
            entry[key] = json!("");
            let e = parse_entry(&entry, None).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.problem.as_str()),
                (key, "must not be empty")
            );
        }
    }

    #[test]
    fn v2_entry_refuses_zero_negative_fractional_and_string_timeouts() {
        // GIVEN maxTimeoutSeconds 0, -5, 1.5, "60" WHEN parsed THEN refused on maxTimeoutSeconds
        for bad in [json!(0), json!(-5), json!(1.5), json!("60"), json!(60.0)] {
            let mut entry = v2_entry();
            entry["maxTimeoutSeconds"] = bad.clone();
            assert_eq!(
                parse_entry(&entry, None).unwrap_err().field,
                "maxTimeoutSeconds",
                "{bad}"
            );
        }
    }

    #[test]
    fn v2_entry_refuses_empty_or_non_string_scheme() {
        // GIVEN scheme "" or 1 WHEN parsed THEN refused on scheme
        for bad in [json!(""), json!(1)] {
            let mut entry = v2_entry();
            entry["scheme"] = bad;
            assert_eq!(parse_entry(&entry, None).unwrap_err().field, "scheme");
        }
    }

    #[test]
    fn v2_entry_keeps_non_exact_scheme_for_the_decision_to_judge() {
        // GIVEN scheme "upto" WHEN parsed THEN it is kept as given
        let mut entry = v2_entry();
        entry["scheme"] = json!("upto");
        assert_eq!(parse_entry(&entry, None).unwrap().scheme, "upto");
    }

    #[test]
    fn v2_entry_refuses_non_object() {
        // GIVEN an array instead of an entry object WHEN parsed THEN refused
        let e = parse_entry(&json!([1, 2]), None).unwrap_err();
        assert!(e.problem.contains("JSON object"));
    }

    #[test]
    fn v2_entry_refuses_non_object_extra() {
        // GIVEN extra as a string WHEN parsed THEN refused on extra
        let mut entry = v2_entry();
        entry["extra"] = json!("USDC");
        assert_eq!(parse_entry(&entry, None).unwrap_err().field, "extra");
    }

    #[test]
    fn v2_entry_canonicalises_amount_and_accepts_uint256_max() {
        // GIVEN amounts "000100" and 2^256-1 WHEN parsed THEN canonical digits come back
        let mut entry = v2_entry();
        entry["amount"] = json!("000100");
        assert_eq!(parse_entry(&entry, None).unwrap().amount, "100");
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        entry["amount"] = json!(max);
        assert_eq!(parse_entry(&entry, None).unwrap().amount, max);
    }

    #[test]
    fn v2_wire_form_uses_amount() {
        // GIVEN a parsed v2 entry WHEN rendered for the wire THEN `amount`, no resource field
        let wire = to_wire(&parse_entry(&v2_entry(), Some(URL)).unwrap());
        assert_eq!(wire["amount"], "10000");
        assert!(wire.get("resource").is_none());
        assert!(wire.get("maxAmountRequired").is_none());
    }
}
