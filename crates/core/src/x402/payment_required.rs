//! The 402 offer: the v1 JSON body and the v2 `PAYMENT-REQUIRED` header.

use serde_json::{Map, Value};

use super::fields::{
    base64_json_object, err, json_object, object, optional_object, optional_str, required_object,
    required_str, x402_version,
};
use super::{resource_host, v1, v2, FieldError, Requirement};

/// The v2 top-level description of the paid resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The http(s) URL of the resource.
    pub url: String,
    /// Human-readable description, if given.
    pub description: Option<String>,
    /// MIME type of the resource, if given.
    pub mime_type: Option<String>,
}

/// A parsed 402 offer of either version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// 1 or 2.
    pub x402_version: u8,
    /// The server's message, if any.
    pub error: Option<String>,
    /// v2 only: the resource all entries pay for.
    pub resource: Option<ResourceInfo>,
    /// The payment options, at least one.
    pub accepts: Vec<Requirement>,
    /// v2 only: protocol extensions, as given.
    pub extensions: Option<Value>,
}

/// Parses a 402 response body (v1; a v2 JSON body with `resource` is accepted too).
pub fn parse_payment_required_body(json: &str) -> Result<PaymentRequired, FieldError> {
    let value = json_object(json.as_bytes(), "body")?;
    parse_value(&value)
}

/// Parses a v2 `PAYMENT-REQUIRED` header value (base64 of the JSON offer).
pub fn parse_payment_required_header(b64: &str) -> Result<PaymentRequired, FieldError> {
    let value = base64_json_object(b64, "PAYMENT-REQUIRED")?;
    parse_header_value(&value)
}

/// Parses decoded `PAYMENT-REQUIRED` JSON, which must be v2.
pub(crate) fn parse_header_value(value: &Value) -> Result<PaymentRequired, FieldError> {
    let offer = parse_value(value)?;
    if offer.x402_version != 2 {
        return Err(FieldError::new(
            "x402Version",
            "the PAYMENT-REQUIRED header carries x402 v2 (v1 offers come in the 402 body)",
        ));
    }
    Ok(offer)
}

/// Parses a decoded offer object of either version.
pub(crate) fn parse_value(value: &Value) -> Result<PaymentRequired, FieldError> {
    let map = object(value, "body")?;
    let version = x402_version(map, "")?;
    let error = optional_str(map, "", "error")?.map(str::to_string);
    let resource = match version {
        2 => Some(parse_resource(
            required_object(map, "", "resource")?,
            "resource",
        )?),
        _ => None,
    };
    let entries = accepts(map)?;
    let url = resource.as_ref().map(|r| r.url.as_str());
    let accepts = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            super::parse_requirement(u64::from(version), entry, url)
                .map_err(|e| e.within(&format!("accepts[{i}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let extensions = match version {
        2 => optional_object(map, "", "extensions")?,
        _ => None,
    };
    Ok(PaymentRequired {
        x402_version: version,
        error,
        resource,
        accepts,
        extensions,
    })
}

/// The `accepts` array: present, an array, not empty.
fn accepts(map: &Map<String, Value>) -> Result<&Vec<Value>, FieldError> {
    match map.get("accepts") {
        None | Some(Value::Null) => Err(err("", "accepts", "is required")),
        Some(Value::Array(a)) if a.is_empty() => {
            Err(err("", "accepts", "must list at least one payment option"))
        }
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(err("", "accepts", "must be a JSON array")),
    }
}

/// Parses a v2 resource object found at `path`.
pub(crate) fn parse_resource(
    map: &Map<String, Value>,
    path: &str,
) -> Result<ResourceInfo, FieldError> {
    let url = required_str(map, path, "url")?;
    if resource_host(url).is_none() {
        return Err(err(path, "url", "must be an http(s) URL with a host"));
    }
    Ok(ResourceInfo {
        url: url.to_string(),
        description: optional_str(map, path, "description")?.map(str::to_string),
        mime_type: optional_str(map, path, "mimeType")?.map(str::to_string),
    })
}

/// The wire form of a v2 resource.
pub(crate) fn resource_to_wire(resource: &ResourceInfo) -> Value {
    let mut out = Map::new();
    out.insert("url".into(), resource.url.clone().into());
    if let Some(description) = &resource.description {
        out.insert("description".into(), description.clone().into());
    }
    if let Some(mime_type) = &resource.mime_type {
        out.insert("mimeType".into(), mime_type.clone().into());
    }
    Value::Object(out)
}

/// The normalised wire JSON of a parsed offer; `raw` is the decoded input it came from.
pub(crate) fn to_wire(offer: &PaymentRequired, raw: &Value) -> Value {
    let mut out = Map::new();
    out.insert("x402Version".into(), offer.x402_version.into());
    if let Some(error) = &offer.error {
        out.insert("error".into(), error.clone().into());
    }
    if let Some(resource) = &offer.resource {
        out.insert("resource".into(), resource_to_wire(resource));
    }
    let raw_entries = raw.get("accepts").and_then(Value::as_array);
    let accepts = offer
        .accepts
        .iter()
        .enumerate()
        .map(|(i, r)| match r.x402_version {
            1 => {
                let entry = raw_entries.and_then(|e| e.get(i)).unwrap_or(&Value::Null);
                v1::to_wire(r, entry)
            }
            _ => v2::to_wire(r),
        })
        .collect();
    out.insert("accepts".into(), Value::Array(accepts));
    if let Some(extensions) = &offer.extensions {
        out.insert("extensions".into(), extensions.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::testdata::*;
    use serde_json::json;

    #[test]
    fn v1_body_maps_base_to_eip155_8453() {
        // GIVEN a v1 402 body on "base" WHEN parsed THEN the requirement is on eip155:8453
        let mut body = v1_body();
        body["accepts"][0]["network"] = json!("base");
        body["accepts"][0]["asset"] = json!(USDC_BASE);
        let offer = parse_payment_required_body(&body.to_string()).unwrap();
        assert_eq!(offer.x402_version, 1);
        assert_eq!(offer.accepts[0].network, "eip155:8453");
        assert_eq!(offer.error.as_deref(), Some("X-PAYMENT header is required"));
        assert_eq!(offer.resource, None);
    }

    #[test]
    fn v1_body_names_the_failing_entry_and_field() {
        // GIVEN a body whose second entry has a bad payTo WHEN parsed THEN the path says so
        let mut body = v1_body();
        let mut bad = v1_entry();
        bad["payTo"] = json!("0x1234");
        body["accepts"] = json!([v1_entry(), bad]);
        let e = parse_payment_required_body(&body.to_string()).unwrap_err();
        assert_eq!(e.field, "accepts[1].payTo");
    }

    #[test]
    fn v1_body_refuses_empty_accepts() {
        // GIVEN accepts [] WHEN parsed THEN refused on accepts
        let mut body = v1_body();
        body["accepts"] = json!([]);
        let e = parse_payment_required_body(&body.to_string()).unwrap_err();
        assert_eq!(e.field, "accepts");
        assert!(e.problem.contains("at least one"));
    }

    #[test]
    fn v1_body_refuses_non_array_accepts() {
        // GIVEN accepts as an object WHEN parsed THEN refused on accepts
        let mut body = v1_body();
        body["accepts"] = v1_entry();
        assert_eq!(
            parse_payment_required_body(&body.to_string())
                .unwrap_err()
                .field,
            "accepts"
        );
    }

    #[test]
    fn body_refuses_string_missing_and_unknown_versions() {
        // GIVEN x402Version "1", absent, 3 WHEN parsed THEN refused on x402Version
        for version in [Some(json!("1")), None, Some(json!(3)), Some(json!(1.0))] {
            let mut body = v1_body();
            match &version {
                Some(v) => body["x402Version"] = v.clone(),
                None => {
                    body.as_object_mut().unwrap().remove("x402Version");
                }
            }
            let e = parse_payment_required_body(&body.to_string()).unwrap_err();
            assert_eq!(e.field, "x402Version", "{version:?}");
        }
    }

    #[test]
    fn body_refuses_invalid_json_and_non_objects() {
        // GIVEN broken JSON and a JSON array WHEN parsed THEN refused on body
        for text in ["{", "[]", "", "null"] {
            assert_eq!(
                parse_payment_required_body(text).unwrap_err().field,
                "body",
                "{text:?}"
            );
        }
    }

    #[test]
    fn v2_json_body_is_accepted_with_resource() {
        // GIVEN a v2 offer sent as a JSON body WHEN parsed THEN resource flows into the entries
        let offer = parse_payment_required_body(&v2_payment_required().to_string()).unwrap();
        assert_eq!(offer.x402_version, 2);
        assert_eq!(
            offer.accepts[0].resource.as_deref(),
            Some("https://api.example.com/premium-data")
        );
    }

    #[test]
    fn v2_header_parses_real_format_base64() {
        // GIVEN a padded base64 PAYMENT-REQUIRED header WHEN parsed THEN all parts are read
        let offer = parse_payment_required_header(&b64(&v2_payment_required())).unwrap();
        assert_eq!(
            offer.resource,
            Some(ResourceInfo {
                url: "https://api.example.com/premium-data".into(),
                description: Some("Access to premium market data".into()),
                mime_type: Some("application/json".into()),
            })
        );
        assert_eq!(offer.accepts.len(), 1);
        assert_eq!(offer.accepts[0].network, "eip155:84532");
        assert_eq!(offer.accepts[0].amount, "10000");
        assert_eq!(offer.extensions, None);
    }

    #[test]
    fn v2_header_accepts_unpadded_base64() {
        // GIVEN the same header without padding WHEN parsed THEN it matches the padded one
        let padded = parse_payment_required_header(&b64(&v2_payment_required())).unwrap();
        let unpadded = parse_payment_required_header(&b64_no_pad(&v2_payment_required())).unwrap();
        assert_eq!(padded, unpadded);
    }

    #[test]
    fn v2_header_decodes_the_reference_library_example() {
        // GIVEN a header as emitted by an x402 server on localhost WHEN parsed THEN it reads
        let header = "eyJ4NDAyVmVyc2lvbiI6MiwiZXJyb3IiOiJQYXltZW50IHJlcXVpcmVkIiwicmVzb3VyY2UiOnsidXJsIjoiaHR0cDovL2xvY2FsaG9zdDozMDAwL3Byb3RlY3RlZC1yb3V0ZSIsImRlc2NyaXB0aW9uIjoiQWNjZXNzIHRvIHByZW1pdW0gY29udGVudCIsIm1pbWVUeXBlIjoiIn0sImFjY2VwdHMiOlt7InNjaGVtZSI6ImV4YWN0IiwibmV0d29yayI6ImVpcDE1NTo4NDUzMiIsImFtb3VudCI6IjEwMDAwMCIsImFzc2V0IjoiMHgwMzZDYkQ1Mzg0MmM1NDI2NjM0ZTc5Mjk1NDFlQzIzMThmM2RDRjdlIiwicGF5VG8iOiIweGZhM0Y1NEFFOUM0Mjg3Q0EwOWE0ODZkZmFGYUNlN2QxZDQwOTVkOTMiLCJtYXhUaW1lb3V0U2Vjb25kcyI6MzAwLCJleHRyYSI6eyJuYW1lIjoiVVNEQyIsInZlcnNpb24iOiIyIn19XX0=";
        let offer = parse_payment_required_header(header).unwrap();
        assert_eq!(offer.accepts[0].amount, "100000");
        assert_eq!(
            offer.accepts[0].pay_to,
            "0xfa3F54AE9C4287CA09a486dfaFaCe7d1d4095d93"
        );
        assert_eq!(
            offer.accepts[0].resource.as_deref(),
            Some("http://localhost:3000/protected-route")
        );
    }

    #[test]
    fn v2_header_refuses_v1_offer() {
        // GIVEN a v1 body base64-encoded into PAYMENT-REQUIRED WHEN parsed THEN refused on x402Version
        let e = parse_payment_required_header(&b64(&v1_body())).unwrap_err();
        assert_eq!(e.field, "x402Version");
    }

    #[test]
    fn v2_header_refuses_missing_resource_and_bad_url() {
        // GIVEN no resource, then a relative resource.url WHEN parsed THEN the path names it
        let mut offer = v2_payment_required();
        offer.as_object_mut().unwrap().remove("resource");
        assert_eq!(
            parse_payment_required_header(&b64(&offer))
                .unwrap_err()
                .field,
            "resource"
        );
        let mut offer = v2_payment_required();
        offer["resource"]["url"] = json!("/premium");
        assert_eq!(
            parse_payment_required_header(&b64(&offer))
                .unwrap_err()
                .field,
            "resource.url"
        );
    }

    #[test]
    fn v2_header_refuses_bad_base64_and_bad_json() {
        // GIVEN invalid base64, then base64 of non-JSON WHEN parsed THEN refused on the header
        let e = parse_payment_required_header("not base64!").unwrap_err();
        assert_eq!(e.field, "PAYMENT-REQUIRED");
        assert!(e.problem.contains("base64"));
        let e = parse_payment_required_header("aGVsbG8=").unwrap_err();
        assert!(e.problem.contains("JSON"), "{}", e.problem);
    }

    #[test]
    fn v2_header_keeps_extensions_and_refuses_non_object_ones() {
        // GIVEN extensions as an object, then as a string WHEN parsed THEN kept, then refused
        let mut offer = v2_payment_required();
        offer["extensions"] = json!({"bazaar": {"info": {}}});
        let parsed = parse_payment_required_header(&b64(&offer)).unwrap();
        assert_eq!(parsed.extensions, Some(json!({"bazaar": {"info": {}}})));
        offer["extensions"] = json!("x");
        assert_eq!(
            parse_payment_required_header(&b64(&offer))
                .unwrap_err()
                .field,
            "extensions"
        );
    }

    #[test]
    fn v2_header_error_paths_point_into_accepts() {
        // GIVEN a v2 entry with a numeric amount WHEN parsed THEN the path is accepts[0].amount
        let mut offer = v2_payment_required();
        offer["accepts"][0]["amount"] = json!(10000);
        let e = parse_payment_required_header(&b64(&offer)).unwrap_err();
        assert_eq!(e.field, "accepts[0].amount");
    }

    #[test]
    fn accepts_entry_that_is_not_an_object_is_named_by_index() {
        // GIVEN accepts ["x"] WHEN parsed THEN the path is accepts[0]
        let mut body = v1_body();
        body["accepts"] = json!(["x"]);
        let e = parse_payment_required_body(&body.to_string()).unwrap_err();
        assert_eq!(e.field, "accepts[0]");
    }

    #[test]
    fn normalised_v1_body_carries_caip2_networks() {
        // GIVEN a v1 body WHEN rendered normalised THEN the network is CAIP-2 and fields keep v1 names
        let body = v1_body();
        let wire = to_wire(&parse_value(&body).unwrap(), &body);
        assert_eq!(wire["accepts"][0]["network"], "eip155:84532");
        assert_eq!(wire["accepts"][0]["maxAmountRequired"], "10000");
        assert_eq!(wire["x402Version"], 1);
    }
}
