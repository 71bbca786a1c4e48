//! `kiln cache explain`: why two keys differ, field by field, from the
//! pre-images `--debug-cache` stored.
//!
//! Paths are written like `op.env[2]` or `parent`; arrays are compared by
//! their longest common subsequence, so one inserted env entry is reported
//! as one addition, not as every later index changing.

use serde_json::Value;

use super::{CacheError, StepCache, StepKey};

/// Arrays whose LCS table would exceed this many cells are reported whole.
const LCS_LIMIT: usize = 1 << 20;

/// One difference between two pre-images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// Where: `kind`, `parent`, `inputs[0]`, `op.mounts[1].id`, …
    pub path: String,
    /// The value in the first pre-image (`None`: absent there).
    pub before: Option<Value>,
    /// The value in the second (`None`: absent there).
    pub after: Option<Value>,
}

impl StepCache {
    /// The fields whose values differ between the pre-images of `a` and `b`;
    /// empty when the keys are equal.
    pub fn explain(&self, a: &StepKey, b: &StepKey) -> Result<Vec<FieldChange>, CacheError> {
        let load = |key: &StepKey| -> Result<Value, CacheError> {
            let bytes = self
                .preimage(key)?
                .ok_or(CacheError::NoPreimage { key: *key })?;
            serde_json::from_slice(&bytes).map_err(|source| CacheError::Parse {
                path: self.record_path(key).with_extension("preimage"),
                source,
            })
        };
        Ok(diff_values(&load(a)?, &load(b)?))
    }
}

/// The changes that turn `a` into `b`.
pub fn diff_values(a: &Value, b: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_at("", a, b, &mut out);
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn diff_at(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => diff_at(&join(path, k), va, vb, out),
                    None => out.push(change(join(path, k), Some(va), None)),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(change(join(path, k), None, Some(vb)));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff_at(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) => diff_arrays(path, x, y, out),
        _ if a != b => out.push(change(path.to_string(), Some(a), Some(b))),
        _ => {}
    }
}

/// Arrays of different lengths: report what the longest common subsequence
/// leaves out (removals at their index in `a`, additions at theirs in `b`).
fn diff_arrays(path: &str, x: &[Value], y: &[Value], out: &mut Vec<FieldChange>) {
    let (n, m) = (x.len(), y.len());
    if n.saturating_mul(m) > LCS_LIMIT {
        // Too big for a quadratic table: name the whole array.
        let (a, b) = (Value::Array(x.to_vec()), Value::Array(y.to_vec()));
        out.push(change(path.to_string(), Some(&a), Some(&b)));
        return;
    }
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(change(format!("{path}[{j}]"), None, Some(&y[j])));
            j += 1;
        } else {
            out.push(change(format!("{path}[{i}]"), Some(&x[i]), None));
            i += 1;
        }
    }
}

fn change(path: String, before: Option<&Value>, after: Option<&Value>) -> FieldChange {
    FieldChange {
        path,
        before: before.cloned(),
        after: after.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_changed_added_and_removed_fields() {
        let a = json!({"op": {"user": "", "env": ["A=1", "B=2"], "x": 1}, "parent": null});
        let b =
            json!({"op": {"user": "app", "env": ["A=1", "N=0", "B=2"], "y": 2}, "parent": null});
        let got = diff_values(&a, &b);
        let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["op.env[1]", "op.user", "op.x", "op.y"]);
        assert_eq!(got[0].after, Some(json!("N=0")));
        assert_eq!(got[0].before, None);
        assert_eq!(got[1].before, Some(json!("")));
        assert_eq!(got[2].after, None);
    }

    #[test]
    fn equal_values_have_no_changes_and_same_length_arrays_go_by_index() {
        let a = json!({"argv": ["sh", "-c", "make"]});
        assert!(diff_values(&a, &a).is_empty());
        let b = json!({"argv": ["sh", "-c", "make all"]});
        let got = diff_values(&a, &b);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "argv[2]");
    }

    #[test]
    fn a_removed_array_element_is_reported_once() {
        let got = diff_values(&json!(["a", "b", "c"]), &json!(["a", "c"]));
        assert_eq!(got, vec![change("[1]".into(), Some(&json!("b")), None)]);
    }
}
