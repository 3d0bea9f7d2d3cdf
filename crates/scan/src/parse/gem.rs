//! Ruby gems: `specifications/*.gemspec`, Ruby source written by RubyGems
//! (`s.name = "rake".freeze`, `s.version = "13.0.6"`). It is never
//! evaluated: the first quoted string assigned to `.name` and `.version`
//! is taken, else the file name (`<name>-<version>.gemspec`).

use super::text::decode;
use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package};

fn assigned<'a>(line: &'a str, attribute: &str) -> Option<&'a str> {
    let (left, right) = line.split_once('=')?;
    if !left.trim_end().ends_with(attribute) || right.starts_with('=') {
        return None;
    }
    let left = left.trim();
    let dot = left.rfind('.')?;
    if &left[dot + 1..] != attribute.trim_start_matches('.') {
        return None;
    }
    let right = right.trim_start();
    let quote = right.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &right[1..];
    let end = rest.find(quote)?;
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Vec<Package>, ParseError> {
    let text = decode(bytes);
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        name = name.or_else(|| assigned(line, ".name"));
        version = version.or_else(|| assigned(line, ".version"));
    }
    let file = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".gemspec");
    let from_file = file
        .rmatch_indices('-')
        .map(|(i, _)| (&file[..i], &file[i + 1..]))
        .find(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()));
    let (name, version) = match (name, version, from_file) {
        (Some(n), Some(v), _) => (n, v),
        (_, _, Some((n, v))) => (n, v),
        _ => return Err(ParseError::malformed("no name and version")),
    };
    Ok(vec![Package {
        ecosystem: Ecosystem::Gem,
        name: name.to_string(),
        version: version.to_string(),
        source: None,
        arch: None,
        path: path.to_string(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_assignments_or_file_name() {
        let spec = b"Gem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\n  s.required_rubygems_version = Gem::Requirement.new(\">= 1.3\")\nend\n";
        let p = parse(spec, "var/lib/gems/specifications/rake-13.0.6.gemspec").unwrap();
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("rake", "13.0.6")
        );
        let p = parse(b"garbage", "x/specifications/net-http-0.3.2.gemspec").unwrap();
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("net-http", "0.3.2")
        );
    }
}
