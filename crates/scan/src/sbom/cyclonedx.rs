//! CycloneDX 1.5 JSON: the image is the metadata component, the operating
//! system an `operating-system` component, every package a `library`
//! with its purl and the path where it was found (property `zot:path`).

use serde_json::{Value, json};

use super::{SbomInfo, TOOL, TOOL_VERSION, fingerprint, purl, timestamp};
use crate::inventory::Inventory;

/// The inventory as a CycloneDX 1.5 JSON document.
pub fn to_cyclonedx(inventory: &Inventory, info: &SbomInfo) -> Value {
    let hash = fingerprint(inventory, info);
    // A UUID from the hash, version 4 and variant bits set.
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = &inventory.os {
        let mut component = json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": os.id,
        });
        if let Some(version) = &os.version_id {
            component["version"] = json!(version);
        }
        components.push(component);
        refs.push("os".to_string());
    }
    for (index, package) in inventory.packages.iter().enumerate() {
        let bom_ref = format!("pkg-{index}");
        let mut properties = vec![
            json!({"name": "zot:path", "value": package.path}),
            json!({"name": "zot:ecosystem", "value": package.ecosystem.purl_type()}),
        ];
        if let Some(source) = &package.source {
            properties.push(json!({"name": "zot:source:name", "value": source.name}));
            properties.push(json!({"name": "zot:source:version", "value": source.version}));
        }
        components.push(json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": package.name,
            "version": package.version,
            "purl": purl(package, inventory.os.as_ref()),
            "properties": properties,
        }));
        refs.push(bom_ref);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": timestamp(info.created),
            "tools": {"components": [{"type": "application", "name": TOOL, "version": TOOL_VERSION}]},
            "component": {"type": "container", "bom-ref": "image", "name": info.name},
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    })
}
