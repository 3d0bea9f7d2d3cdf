//! Our schema against zot's `schema.graphql` (copied verbatim into
//! `tests/zot-schema.graphql`): every type, field, argument, enum value and
//! nullability must match.

use std::collections::BTreeMap;

use async_graphql_parser::parse_schema;
use async_graphql_parser::types::{TypeKind, TypeSystemDefinition};

/// type name → (kind, member → signature)
type Shape = BTreeMap<String, (String, BTreeMap<String, String>)>;

fn shape(sdl: &str) -> Shape {
    let doc = match parse_schema(sdl) {
        Ok(d) => d,
        Err(e) => panic!("unparsable SDL: {e}\n{sdl}"),
    };
    let mut out = Shape::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = t.node;
        let mut members = BTreeMap::new();
        let kind = match t.kind {
            TypeKind::Scalar => "scalar",
            TypeKind::Object(o) => {
                for f in o.fields {
                    let f = f.node;
                    let args: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    members.insert(
                        f.name.node.to_string(),
                        format!("({}) -> {}", args.join(", "), f.ty.node),
                    );
                }
                "type"
            }
            TypeKind::InputObject(o) => {
                for f in o.fields {
                    members.insert(f.node.name.node.to_string(), f.node.ty.node.to_string());
                }
                "input"
            }
            TypeKind::Enum(e) => {
                for v in e.values {
                    members.insert(v.node.value.node.to_string(), String::new());
                }
                "enum"
            }
            TypeKind::Interface(_) => "interface",
            TypeKind::Union(_) => "union",
        };
        out.insert(t.name.node.to_string(), (kind.to_owned(), members));
    }
    out
}

#[test]
fn schema_matches_zot() {
    let ours = shape(&zot_search::schema::sdl());
    let zot = shape(include_str!("zot-schema.graphql"));
    let names = |s: &Shape| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&zot), "type names differ");
    for (name, theirs) in &zot {
        assert_eq!(ours.get(name), Some(theirs), "type {name} differs");
    }
}

#[test]
fn comparison_catches_drift() {
    let zot = include_str!("zot-schema.graphql");
    let drifted = zot.replace("    RepoName: String\n", "    RepoName: String!\n");
    assert_ne!(drifted, zot, "fixture edit did not apply");
    assert_ne!(shape(&drifted), shape(zot));
}
