//! SPDX 2.3 JSON: a document describing the image (a `CONTAINER`
//! package) that contains the operating system and every package; each
//! package has a purl external reference and its path in `sourceInfo`.

use serde_json::{Value, json};

use super::{SbomInfo, TOOL, TOOL_VERSION, fingerprint, purl, timestamp};
use crate::inventory::Inventory;

/// The inventory as an SPDX 2.3 JSON document.
pub fn to_spdx(inventory: &Inventory, info: &SbomInfo) -> Value {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": info.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut contains = |id: &str| {
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    };
    if let Some(os) = &inventory.os {
        let mut package = json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        });
        if let Some(version) = &os.version_id {
            package["versionInfo"] = json!(version);
        }
        packages.push(package);
        contains("SPDXRef-OperatingSystem");
    }
    for (index, package) in inventory.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{index}");
        let mut entry = json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": if package.ecosystem.is_os() { "INSTALL" } else { "LIBRARY" },
            "sourceInfo": format!("{} package found in: {}", package.ecosystem.purl_type(), package.path),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(package, inventory.os.as_ref()),
            }],
        });
        if let Some(source) = &package.source {
            entry["comment"] = json!(format!(
                "source package: {} {}",
                source.name, source.version
            ));
        }
        packages.push(entry);
        contains(&id);
    }
    let name = info.name.replace(
        |c: char| !c.is_ascii_alphanumeric() && !"-._".contains(c),
        "-",
    );
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": info.name,
        "documentNamespace": format!("https://zotregistry.dev/spdx/{name}-{}", &fingerprint(inventory, info)[..32]),
        "creationInfo": {
            "created": timestamp(info.created),
            "creators": [format!("Tool: {TOOL}-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}
