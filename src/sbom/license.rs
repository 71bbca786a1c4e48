//! Declared licenses as SPDX license expressions, or nothing.
//!
//! A document with an invalid expression is an invalid document, so only
//! what parses strictly (ids from the SPDX license list, case as listed,
//! not deprecated) is kept; a whitespace-separated list of such ids (apk's
//! `L:` often is one) is joined with AND, as syft does. Everything else
//! (free text, `GPLv2+`, `LicenseRef-…` whose text we do not have) is
//! `None`, written as NOASSERTION. Names are not guessed into ids.

/// Past this a `License:` field is a license text, not an expression.
const MAX_EXPRESSION_LEN: usize = 512;

/// `raw` as a valid SPDX expression, if it is one (or a list of ids).
pub(super) fn expression(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_EXPRESSION_LEN || raw.contains('\n') {
        return None;
    }
    if valid(raw) {
        return Some(raw.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let ids: Vec<&str> = raw.split_whitespace().collect();
    if ids.len() > 1 && ids.iter().all(|id| is_operand(id) && valid(id)) {
        return Some(ids.join(" AND "));
    }
    None
}

fn is_operand(s: &str) -> bool {
    !["AND", "OR", "WITH"].contains(&s.to_ascii_uppercase().as_str())
}

fn valid(s: &str) -> bool {
    // A LicenseRef needs its text in the document (hasExtractedLicensingInfos).
    if ["LicenseRef-", "DocumentRef-", "AdditionRef-"]
        .iter()
        .any(|r| s.contains(r))
    {
        return false;
    }
    spdx::Expression::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_valid_expressions_only() {
        assert_eq!(expression("MIT").as_deref(), Some("MIT"));
        assert_eq!(
            expression(" (MIT OR Apache-2.0)  AND BSD-3-Clause ").as_deref(),
            Some("(MIT OR Apache-2.0) AND BSD-3-Clause")
        );
        assert_eq!(
            expression("GPL-2.0-or-later WITH Classpath-exception-2.0").as_deref(),
            Some("GPL-2.0-or-later WITH Classpath-exception-2.0")
        );
        assert_eq!(
            expression("MIT BSD-2-Clause").as_deref(),
            Some("MIT AND BSD-2-Clause")
        );
        for bad in [
            "",
            "BSD",
            "GPLv2+",
            "mit",
            "MIT OR",
            "MIT AND",
            "(MIT",
            "LicenseRef-Proprietary",
            "Apache Software License",
            "MIT\nfull text",
            "GPL-2.0",
            "MIT OR OR",
        ] {
            assert_eq!(expression(bad), None, "{bad:?}");
        }
        assert_eq!(expression(&"MIT AND ".repeat(200)), None);
    }
}
